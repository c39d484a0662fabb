package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/inspect"
	"github.com/mediagw/mediagw/service/inspect/rules"
	"github.com/mediagw/mediagw/service/ledger"
)

// MediaChecks says what the engine does with X's media rules.
type MediaChecks int

// The media check modes. The zero value is off.
const (
	// ChecksOff uploads without inspecting the bytes.
	ChecksOff MediaChecks = iota
	// ChecksEnforce refuses media that breaks a rule: before INIT when
	// the first bytes show it, else before FINALIZE.
	ChecksEnforce
	// ChecksWarn inspects, logs and counts what breaks a rule, and
	// uploads anyway.
	ChecksWarn
)

// ParseMediaChecks reads enforce, warn or off.
func ParseMediaChecks(s string) (MediaChecks, error) {
	switch s {
	case "enforce":
		return ChecksEnforce, nil
	case "warn":
		return ChecksWarn, nil
	case "off":
		return ChecksOff, nil
	}
	return 0, fmt.Errorf("media checks %q: want enforce, warn or off", s)
}

func (m MediaChecks) String() string {
	switch m {
	case ChecksEnforce:
		return "enforce"
	case ChecksWarn:
		return "warn"
	}
	return "off"
}

// DefaultPreInitBytes is how much of an upload the engine reads before
// INIT when it inspects the media (Config.PreInitBytes).
const DefaultPreInitBytes = 512 << 10

// inspection is one upload's inspector and the rules it is held to.
type inspection struct {
	in       *inspect.Inspector
	profile  rules.Profile
	category string
	mode     MediaChecks
	// warned holds the violations already logged and counted in warn
	// mode, by reason and field, so each is reported once.
	warned map[string]rules.Violation
	order  []string
	// fed is set once the inspector saw the whole media (a spooled
	// upload, inspected on its way to the spool file).
	fed bool
	// stored is the verdict a resumed upload found in the ledger: its
	// bytes before the resume offset cannot be inspected again.
	stored *ledger.Verdict
}

// newInspection returns the inspection of an upload, nil when checks are
// off. total is -1 while the size is unknown (a spooled upload).
func (u *upload) newInspection(account string) *inspection {
	mode := u.e.cfg.MediaChecks
	if mode == ChecksOff {
		return nil
	}
	total := u.spec.TotalBytes
	if total == 0 {
		total = -1
	}
	p := rules.Default()
	if f := u.e.cfg.MediaRules; f != nil {
		if q := f(account); q != nil {
			p = q
		}
	}
	return &inspection{in: inspect.New(u.spec.MediaType, total), profile: p, category: u.spec.Category,
		mode: mode, warned: map[string]rules.Violation{}}
}

// write feeds the inspector; nil-safe, and a no-op for an inspection
// restored from the ledger.
func (n *inspection) write(p []byte) {
	if n != nil && n.in != nil && !n.fed {
		_, _ = n.in.Write(p) // never fails, never keeps p
	}
}

// Write feeds the inspector (an io.Writer for io.TeeReader).
func (n *inspection) Write(p []byte) (int, error) {
	n.write(p)
	return len(p), nil
}

// live says the inspection reads this upload's bytes (it is not off, nor
// restored from the ledger for a resume).
func (n *inspection) live() bool { return n != nil && n.in != nil }

// check lists the rules the bytes seen so far break (final: the stream
// ended).
func (n *inspection) check(final bool) []rules.Violation {
	r := n.in.Report()
	if final {
		r = n.in.Finish()
	}
	return n.profile.Check(n.category, r, final)
}

// decided says that the bytes seen leave nothing more to learn before the
// end: every decisive box, frame or line was seen, or the movie's moov
// was read (its samples follow).
func (n *inspection) decided() bool {
	r := n.in.Report()
	return r.Complete || r.Known.Has(inspect.KnownTracks)
}

// judge applies the violations: with enforce they are the upload's
// refusal (sent says whether anything reached X); with warn each is
// logged and counted once and the upload goes on.
func (u *upload) judge(ctx context.Context, vs []rules.Violation, sent bool) error {
	n := u.insp
	if len(vs) == 0 || n == nil {
		return nil
	}
	cat := attrCategory.String(n.category)
	if n.mode == ChecksWarn {
		for _, v := range vs {
			k := v.Reason + "/" + v.Field
			if _, seen := n.warned[k]; seen {
				continue
			}
			n.warned[k] = v
			n.order = append(n.order, k)
			u.e.tel.mediaViolations.Add(ctx, 1, metric.WithAttributes(attrReason.String(v.Reason), cat, attrAction.String("warned")))
			u.e.log.LogAttrs(ctx, slog.LevelWarn, "media breaks an X rule (--media-checks warn: uploaded anyway)",
				slog.String("reason", v.Reason), slog.String("field", v.Field), slog.String("limit", v.Limit),
				slog.String("actual", v.Actual), slog.String("media_category", n.category))
		}
		return nil
	}
	for _, v := range vs {
		u.e.tel.mediaViolations.Add(ctx, 1, metric.WithAttributes(attrReason.String(v.Reason), cat, attrAction.String("refused")))
	}
	return refusal(n.category, vs, sent)
}

// refusal is the caller's error for media that breaks X's rules.
func refusal(category string, vs []rules.Violation, sent bool) error {
	what := "nothing was sent to X"
	if sent {
		what = "it was not finalized"
	}
	parts := make([]string, 0, len(vs))
	av := make([]apierr.Violation, 0, len(vs))
	for _, v := range vs {
		parts = append(parts, v.Description)
		av = append(av, apierr.Violation{Reason: v.Reason, Field: v.Field, Limit: v.Limit, Actual: v.Actual, Description: v.Description})
	}
	return &apierr.Error{Code: codes.InvalidArgument, Violations: av,
		Msg: fmt.Sprintf("the media breaks X's %s rules: %s (%s)", category, strings.Join(parts, " "), what)}
}

// violations are the violations an upload ends with: the refusal's, or
// those warned about.
func (n *inspection) violations(refused []rules.Violation) []rules.Violation {
	if n == nil {
		return nil
	}
	if refused != nil {
		return refused
	}
	out := make([]rules.Violation, 0, len(n.order))
	for _, k := range n.order {
		out = append(out, n.warned[k])
	}
	return out
}

// proto is what the inspection read, for the caller.
func (n *inspection) proto(vs []rules.Violation) *mediagwv1.MediaInspection {
	if n == nil {
		return nil
	}
	if n.stored != nil {
		m := &mediagwv1.MediaInspection{}
		if protojson.Unmarshal(n.stored.Inspection, m) != nil {
			return nil
		}
		return m
	}
	r := n.in.Report()
	m := &mediagwv1.MediaInspection{Format: string(r.Format), Faststart: r.Faststart, Fragmented: r.Fragmented,
		Enforced: n.mode == ChecksEnforce}
	if r.Known.Has(inspect.KnownDuration) && r.Duration > 0 {
		m.Duration = durationpb.New(r.Duration)
	}
	if r.Known.Has(inspect.KnownDimensions) {
		m.Width, m.Height = int32(r.Width), int32(r.Height)
	}
	if r.VideoTracks > 0 {
		v := r.Video
		m.VideoCodec, m.VideoProfile, m.PixFmt, m.SampleAspectRatio = v.Codec, v.Profile, v.PixFmt, v.SAR()
		if m.Width == 0 {
			m.Width, m.Height = int32(v.Width), int32(v.Height)
		}
		if r.Known.Has(inspect.KnownFrameRate) {
			m.FrameRate = v.FrameRate()
		}
	}
	if r.AudioTracks > 0 {
		m.AudioCodec, m.AudioProfile, m.AudioChannels = r.Audio.Codec, r.Audio.Profile, int32(r.Audio.Channels)
	}
	if r.Format == inspect.FormatGIF {
		m.Frames = int32(r.Frames)
	}
	if r.Format == inspect.FormatSRT || r.Format == inspect.FormatVTT {
		m.Cues = int32(r.Subtitles.Cues)
	}
	for _, v := range vs {
		m.Violations = append(m.Violations, &mediagwv1.MediaRuleViolation{Reason: v.Reason, Field: v.Field,
			Limit: v.Limit, Actual: v.Actual, Description: v.Description})
	}
	return m
}

// verdict is the inspection as the ledger keeps it.
func (n *inspection) verdict(vs []rules.Violation, enforced bool) *ledger.Verdict {
	if n == nil {
		return nil
	}
	if n.stored != nil {
		return n.stored
	}
	b, _ := protojson.Marshal(n.proto(vs))
	v := &ledger.Verdict{Inspection: b, Enforced: enforced && len(vs) > 0}
	for _, x := range vs {
		v.Violations = append(v.Violations, ledger.Violation{Reason: x.Reason, Field: x.Field, Limit: x.Limit, Actual: x.Actual, Description: x.Description})
	}
	return v
}

// storedRefusal is the refusal a FAILED entry's verdict recorded, nil when
// the entry failed for another reason.
func storedRefusal(e *ledger.Entry) error {
	v := e.Verdict
	if v == nil || !v.Enforced || len(v.Violations) == 0 || e.Error == nil {
		return nil
	}
	av := make([]apierr.Violation, 0, len(v.Violations))
	for _, x := range v.Violations {
		av = append(av, apierr.Violation{Reason: x.Reason, Field: x.Field, Limit: x.Limit, Actual: x.Actual, Description: x.Description})
	}
	return &apierr.Error{Code: codes.InvalidArgument, Violations: av,
		Msg: fmt.Sprintf("%s (the upload with idempotency key %s was refused before; a new attempt needs a new key)", e.Error.Message, apierr.Quote(e.Key))}
}

// violationsOf is what the upload's response reports: nil-safe.
func (n *inspection) violationsOf() []rules.Violation {
	if n == nil {
		return nil
	}
	return n.violations(nil)
}

// inspectHead reads on after the sniffed head of an inspected upload of
// known size, before INIT: up to Config.PreInitBytes (and the declared
// size), stopping as soon as the inspector has decided (a faststart
// moov, an image header, a complete file). A violation those bytes show
// refuses the upload with nothing sent to X. The bytes read are the head
// the session gets first.
func (u *upload) inspectHead(ctx context.Context, head []byte) ([]byte, io.ReadCloser, error) {
	n := u.insp
	if n == nil {
		return head, nil, nil
	}
	bound := min(u.e.cfg.PreInitBytes, u.spec.TotalBytes)
	const step = 64 << 10
	if int64(cap(head)) < bound && !n.decided() {
		// One buffer of the bound, not a doubling series of them.
		h := make([]byte, len(head), bound)
		copy(h, head)
		head = h
	}
	for {
		if vs := n.check(false); len(vs) > 0 {
			if err := u.judge(ctx, vs, false); err != nil {
				u.refused = vs
				return nil, nil, err
			}
		}
		if int64(len(head)) >= bound || n.decided() {
			return head, nil, nil
		}
		k := int(min(int64(step), bound-int64(len(head))))
		got, err := io.ReadFull(u.src, head[len(head):len(head)+k])
		// Inspected now, counted and hashed once INIT told the segment
		// size (see pump): a keyed upload keeps the hash state at every
		// segment boundary.
		n.write(head[len(head) : len(head)+got])
		head = head[:len(head)+got]
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			u.tally(head[u.tallied:])
			return nil, nil, u.short()
		case err != nil:
			return nil, nil, err
		}
	}
}

// recordRefusal records a keyed upload refused before INIT as FAILED with
// its verdict, so that a replay of the key answers the same refusal.
func (u *upload) recordRefusal(ctx context.Context, k *keyedRun, start *mediagwv1.UploadStart, err error) error {
	now := time.Now()
	st := status.Convert(apierr.ToStatus(err))
	e := &ledger.Entry{Key: k.key, Phase: ledger.PhaseFailed, Start: ledgerStart(u.spec, start), Created: now, Updated: now,
		Expires: now.Add(u.e.cfg.StatusTTL), Trace: traceparent(ctx), Verdict: u.insp.verdict(u.refused, true),
		Error: &ledger.Error{Code: apierr.CodeName(st.Code()), Message: st.Message()}}
	rec := newRecord(k.lease, e)
	u.rec = rec
	if werr := rec.update(ctx, func(*ledger.Entry) {}); werr != nil {
		return ledgerError(werr)
	}
	return err
}

// judgeSpooled decides a spooled upload, whose whole media the inspector
// saw on its way to the spool file, before INIT.
func (u *upload) judgeSpooled(ctx context.Context) error {
	if !u.insp.live() {
		return nil
	}
	vs := u.insp.check(true)
	u.insp.fed = true // its bytes are counted from the spool file, not inspected twice
	if err := u.judge(ctx, vs, false); err != nil {
		u.refused = vs
		return err
	}
	return nil
}

// judgeEnd decides an upload once every byte is at X, before FINALIZE: a
// refusal is recorded in the ledger with its verdict.
func (u *upload) judgeEnd(ctx context.Context) error {
	if !u.insp.live() {
		return nil
	}
	vs := u.insp.check(true)
	err := u.judge(ctx, vs, true)
	if err == nil {
		return nil
	}
	u.refused = vs
	if werr := u.rec.update(ctx, func(e *ledger.Entry) { e.Verdict = u.insp.verdict(vs, true) }); werr != nil {
		return ledgerError(werr)
	}
	return err
}
