package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/upstream"
)

// backend connects the upstream adapter to the interfaces the service
// declares; it only converts types.
type xBackend struct {
	c *upstream.Client
	// hasDefault is false when no X credentials are configured, so calls
	// without their own token are refused before reaching X.
	hasDefault  bool
	parallelism int
	// accounts are the named X accounts (--accounts), by name.
	accounts *accountSet
	log      *slog.Logger
}

var _ backend.Backend = xBackend{}

// errNoCredentials is returned for calls that carry no token when mediagw
// has no default credentials. It reads as HTTP 401 to the service.
type errNoCredentials struct{}

func (errNoCredentials) Error() string {
	return "no X credentials: pass an X user token as x-access-token metadata (REST: X-Access-Token header)"
}
func (errNoCredentials) StatusCode() int { return 401 }

func (b xBackend) creds(a backend.Auth) (upstream.Credentials, error) {
	if a.Token != "" {
		return upstream.BearerToken(a.Token), nil
	}
	if a.Account != "" {
		if c, ok := b.accounts.get(a.Account); ok {
			return c, nil
		}
		// The callers policy names only configured accounts.
		return nil, fmt.Errorf("X account %q is not configured", a.Account)
	}
	if !b.hasDefault {
		return nil, errNoCredentials{}
	}
	return nil, nil // the client's default
}

func (b xBackend) Begin(ctx context.Context, a backend.Auth, s backend.Spec) (backend.Session, error) {
	creds, err := b.creds(a)
	if err != nil {
		return nil, err
	}
	u, err := b.c.Begin(ctx, creds, initParams(s), uploadOptions(s)...)
	if err != nil {
		return nil, err
	}
	return session{u: u, parallelism: b.parallelism, log: b.log}, nil
}

func (b xBackend) Resume(ctx context.Context, a backend.Auth, s backend.Spec, at backend.ResumeAt) (backend.Session, error) {
	creds, err := b.creds(a)
	if err != nil {
		return nil, err
	}
	acked := make([]bool, at.Segments)
	for i := range acked {
		acked[i] = at.Acked(i)
	}
	u, err := b.c.Resume(ctx, creds, initParams(s), upstream.ResumePoint{
		MediaID: at.MediaID, MediaKey: at.MediaKey, Expires: at.Expires,
		SegmentSize: at.SegmentSize, Segments: at.Segments, Plan: toUpstreamPlan(at.Plan), Acked: acked, Offset: at.Offset,
	}, uploadOptions(s)...)
	if err != nil {
		return nil, err
	}
	return session{u: u, parallelism: b.parallelism, log: b.log}, nil
}

func initParams(s backend.Spec) upstream.InitParams {
	return upstream.InitParams{
		MediaType:        s.MediaType,
		MediaCategory:    s.Category,
		TotalBytes:       s.TotalBytes,
		AdditionalOwners: s.AdditionalOwners,
		Shared:           s.Shared,
	}
}

func uploadOptions(s backend.Spec) []upstream.UploadOption {
	var opts []upstream.UploadOption
	if s.SegmentDone != nil {
		opts = append(opts, upstream.WithSegmentDone(s.SegmentDone))
	}
	if fn := s.Replanned; fn != nil {
		opts = append(opts, upstream.WithReplanned(func(p upstream.Plan) {
			fn(toBackendPlan(p), p.Count(s.TotalBytes))
		}))
	}
	return opts
}

func toUpstreamPlan(p backend.Plan) upstream.Plan {
	if len(p) == 0 {
		return nil
	}
	out := make(upstream.Plan, len(p))
	for i, r := range p {
		out[i] = upstream.Run{From: r.From, Size: r.Size}
	}
	return out
}

func toBackendPlan(p upstream.Plan) backend.Plan {
	out := make(backend.Plan, len(p))
	for i, r := range p {
		out[i] = backend.Run{From: r.From, Size: r.Size}
	}
	return out
}

func (b xBackend) Status(ctx context.Context, a backend.Auth, mediaID string) (backend.Media, error) {
	creds, err := b.creds(a)
	if err != nil {
		return backend.Media{}, err
	}
	m, err := b.c.Status(ctx, creds, mediaID)
	if err != nil {
		return backend.Media{}, err
	}
	return toMedia(m), nil
}

type session struct {
	u           *upstream.Upload
	parallelism int
	log         *slog.Logger
}

func (s session) MediaID() string                     { return s.u.MediaID() }
func (s session) MediaKey() string                    { return s.u.MediaKey() }
func (s session) Ready() error                        { return s.u.Ready() }
func (s session) Expires() time.Time                  { return s.u.Expires() }
func (s session) Write(p []byte) (int, error)         { return s.u.Write(p) }
func (s session) ReadFrom(r io.Reader) (int64, error) { return s.u.ReadFrom(r) }
func (s session) Abort(err error)                     { s.u.Abort(err) }

// Interrupt says at debug level that the upload waits for its APPENDs in
// flight (up to wait, which a drain or a broken stream can spend), then
// interrupts it.
func (s session) Interrupt(wait time.Duration) {
	if s.log != nil {
		s.log.Debug("upload interrupted: the APPENDs in flight may finish", "media_id", s.u.MediaID(), "wait", wait.String())
	}
	s.u.Interrupt(wait)
}

func (s session) Info() backend.SessionInfo {
	size, n := s.u.Segments()
	return backend.SessionInfo{SegmentSize: size, Segments: n, Parallelism: min(s.parallelism, n), Retries: s.u.Retries(),
		Plan: toBackendPlan(s.u.Plan())}
}

func (s session) Finish(ctx context.Context) (backend.Media, error) {
	m, err := s.u.Finish(ctx)
	if err != nil {
		return backend.Media{}, err
	}
	return toMedia(m), nil
}

func toMedia(m *upstream.Media) backend.Media {
	if m == nil {
		return backend.Media{}
	}
	out := backend.Media{ID: m.ID, Key: m.Key, Size: m.Size, ExpiresAfterSecs: m.ExpiresAfterSecs}
	if p := m.Processing; p != nil {
		out.Processing = &backend.Processing{
			State:           string(p.State),
			ProgressPercent: p.ProgressPercent,
			CheckAfterSecs:  p.CheckAfterSecs,
		}
		if e := p.Error; e != nil {
			out.Processing.Error = &backend.ProcessingError{Code: e.Code, Name: e.Name, Message: e.Message}
		}
	}
	return out
}
