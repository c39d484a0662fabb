package mediaops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
)

// maxAttempts bounds the calls sent for one action whose earlier calls
// were found not applied.
const maxAttempts = 3

var (
	// errNotReady: the media is still processing.
	errNotReady = errors.New("the media is not usable yet")
	// errOpen: a call's outcome is open; the action is checked later.
	errOpen = errors.New("a call's outcome is unknown")
	// errCannotTell: nothing shows whether X applied a call.
	errCannotTell = errors.New("nothing shows whether X applied the call")
)

// take works on the open actions of the entry key now, and watches the
// media when it is still processing. auth is the credential when the
// caller is at hand (nil: from the entry).
func (o *Ops) take(key, mediaID string, auth *backend.Auth) (*ledger.Entry, error) {
	e, a, err := o.process(o.ctx, key, auth)
	switch {
	case errors.Is(err, errNotReady):
		o.watch(key, mediaID, a)
	case err != nil && !errors.Is(err, ledger.ErrHeld) && !errors.Is(err, errOpen) && o.ctx.Err() == nil:
		o.log.Warn("mediaops: applying an upload's metadata or subtitles failed; it is tried again", "media_id", mediaID, "error", err.Error())
	}
	return e, err
}

func (o *Ops) isWatched(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.watching[key]
}

// watch follows the processing of mediaID through the relay (whose poll
// runs while anyone watches, a caller or this) and works on the entry's
// actions once it ended.
func (o *Ops) watch(key, mediaID string, a backend.Auth) {
	o.mu.Lock()
	if o.watching[key] || o.ctx.Err() != nil {
		o.mu.Unlock()
		return
	}
	o.watching[key] = true
	o.wg.Add(1)
	o.mu.Unlock()
	go func() {
		defer o.wg.Done()
		defer func() {
			o.mu.Lock()
			delete(o.watching, key)
			o.mu.Unlock()
		}()
		err := o.cfg.Relay.Watch(o.ctx, a, mediaID, func(*mediagwv1.ProcessingStatus) error { return nil })
		if o.ctx.Err() != nil {
			return
		}
		if err != nil {
			o.log.Warn("mediaops: watching a media for its metadata or subtitles failed; the ledger scan tries again", "media_id", mediaID, "error", err.Error())
			return
		}
		if _, _, err := o.process(o.ctx, key, &a); err != nil && !errors.Is(err, ledger.ErrHeld) && !errors.Is(err, errOpen) && o.ctx.Err() == nil {
			o.log.Warn("mediaops: applying an upload's metadata or subtitles failed; the ledger scan tries again", "media_id", mediaID, "error", err.Error())
		}
	}()
}

// process takes the entry's lease and works on its open actions: it
// returns the entry as stored last, and the credential it used.
func (o *Ops) process(ctx context.Context, key string, auth *backend.Auth) (*ledger.Entry, backend.Auth, error) {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	lease, e, err := o.cfg.Ledger.Acquire(lctx, key, false)
	cancel()
	if err != nil {
		return nil, backend.Auth{}, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = lease.Release(rctx)
	}()
	if e == nil || e.Phase != ledger.PhaseCompleted || !e.Actions.Open() {
		return e, backend.Auth{}, nil
	}
	w := &work{o: o, ctx: ctx, lease: lease, e: e}
	a := backend.Auth{Account: e.Actions.Account}
	switch {
	case auth != nil:
		a = *auth
	case e.Actions.UserToken:
		return e, a, w.failAll(&ledger.Error{Code: "FAILED_PRECONDITION", Message: "the upload used an X user token, which mediagw does not keep, " +
			"and the caller is gone: set the metadata with SetMetadata and attach the subtitles with AttachSubtitles, passing the token"})
	}
	w.auth = a
	resp := &mediagwv1.UploadResponse{}
	_ = protojson.Unmarshal(e.Response, resp)
	if p := resp.GetProcessing(); p != nil && p.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED {
		st, err := o.cfg.Relay.Get(ctx, a, e.MediaID)
		if err != nil {
			return e, a, err
		}
		switch st.GetState() {
		case mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED:
		case mediagwv1.ProcessingState_PROCESSING_STATE_FAILED:
			msg := "X could not process the media"
			if pe := st.GetError(); pe != nil {
				msg = fmt.Sprintf("X could not process the media: %s: %s", pe.GetName(), pe.GetMessage())
			}
			return e, a, w.failAll(&ledger.Error{Code: "FAILED_PRECONDITION", Message: msg})
		default:
			return e, a, errNotReady
		}
	}
	return e, a, w.run()
}

// work is one holder's pass over an entry's actions.
type work struct {
	o     *Ops
	ctx   context.Context
	lease ledger.Lease
	e     *ledger.Entry
	auth  backend.Auth
}

func (w *work) put() error {
	w.e.Updated = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), storeTimeout)
	defer cancel()
	return w.lease.Put(ctx, w.e)
}

// failAll fails every open action with why.
func (w *work) failAll(why *ledger.Error) error {
	a := w.e.Actions
	if a.Metadata != nil && a.MetaSt.Open() {
		a.MetaSt = ledger.ActionState{Step: ledger.StepFailed, Error: why, Attempts: a.MetaSt.Attempts}
	}
	for i := range a.Subtitles {
		if s := &a.Subtitles[i].State; s.Open() {
			*s = ledger.ActionState{Step: ledger.StepFailed, Error: why, Attempts: s.Attempts}
		}
	}
	return w.put()
}

// run applies the metadata, then each subtitles track.
func (w *work) run() error {
	a := w.e.Actions
	var open bool
	if a.Metadata != nil && a.MetaSt.Open() {
		md, err := metadataOf(a)
		if err != nil {
			a.MetaSt = ledger.ActionState{Step: ledger.StepFailed, Error: &ledger.Error{Code: "INTERNAL", Message: "the ledger's metadata is unreadable"}}
			if err := w.put(); err != nil {
				return err
			}
		} else {
			err := w.step(&a.MetaSt,
				func(ctx context.Context) (bool, error) { return w.metadataApplied(ctx, md) },
				func(ctx context.Context) error { return w.o.cfg.X.SetMetadata(ctx, w.auth, w.e.MediaID, toBackend(md)) })
			if errors.Is(err, errOpen) {
				open = true
			} else if err != nil {
				return err
			}
		}
	}
	for i := range a.Subtitles {
		s := &a.Subtitles[i]
		if !s.State.Open() {
			continue
		}
		t := backend.Subtitles{MediaID: s.MediaID, LanguageCode: s.LanguageCode, DisplayName: s.DisplayName}
		err := w.step(&s.State,
			func(context.Context) (bool, error) { return false, errCannotTell },
			func(ctx context.Context) error {
				return w.o.cfg.X.AttachSubtitles(ctx, w.auth, w.e.MediaID, w.e.Start.Category, t)
			})
		if errors.Is(err, errOpen) {
			open = true
		} else if err != nil {
			return err
		}
	}
	if open {
		return errOpen
	}
	return nil
}

// metadataApplied asks X's lookup whether md's alt text is on the media.
func (w *work) metadataApplied(ctx context.Context, md *mediagwv1.MediaMetadata) (bool, error) {
	if md.AltText == nil || !w.o.cfg.X.CanLookup() || w.e.MediaKey == "" {
		return false, errCannotTell
	}
	d, err := w.o.cfg.X.LookupMedia(ctx, w.auth, w.e.MediaKey)
	if err != nil {
		return false, err
	}
	return d.AltText == md.GetAltText(), nil
}

// inFlightGrace is how long after its timeout a call recorded SENDING is
// still taken to be possibly in flight: its holder's clock, the time its
// cancellation takes to reach X.
const inFlightGrace = 5 * time.Second

// step drives one action: SENDING is recorded before the call goes out;
// an action found SENDING is first checked with applied. One found SENDING
// with no outcome recorded, by a holder that may still be making the call
// (its lease was lost or taken over while the call ran), is left alone
// until the call's timeout has passed: a lookup before then could miss a
// call that X applies a moment later, and the action would be sent twice.
func (w *work) step(st *ledger.ActionState, applied func(context.Context) (bool, error), call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.o.cfg.CallTimeout)
	defer cancel()
	if st.Step == ledger.StepSending && st.Error == nil && !st.Since.IsZero() &&
		time.Since(st.Since) < w.o.cfg.CallTimeout+inFlightGrace {
		return errOpen
	}
	if st.Step == ledger.StepSending {
		ok, err := applied(ctx)
		switch {
		case errors.Is(err, errCannotTell):
			*st = ledger.ActionState{Step: ledger.StepFailed, Attempts: st.Attempts, Error: &ledger.Error{Code: "UNKNOWN",
				Message: "X may have applied the call (its outcome is unknown) and nothing shows whether it did, so it was not sent again"}}
			return w.ended(ctx, "unknown")
		case err != nil:
			return errors.Join(errOpen, err)
		case ok:
			*st = ledger.ActionState{Step: ledger.StepApplied, Attempts: st.Attempts}
			return w.ended(ctx, "applied")
		case st.Attempts >= maxAttempts:
			*st = ledger.ActionState{Step: ledger.StepFailed, Attempts: st.Attempts, Error: &ledger.Error{Code: "UNAVAILABLE",
				Message: fmt.Sprintf("X did not apply the call after %d attempts", st.Attempts)}}
			return w.ended(ctx, "failed")
		}
	}
	st.Step, st.Error, st.Since = ledger.StepSending, nil, time.Now().UTC()
	st.Attempts++
	if err := w.put(); err != nil {
		return err // nothing was sent
	}
	err := call(ctx)
	switch {
	case err == nil:
		*st = ledger.ActionState{Step: ledger.StepApplied, Attempts: st.Attempts}
		return w.ended(ctx, "applied")
	case outcomeUnknown(err):
		st.Error = failure(err) // the call ended: it can be looked up at once
		if perr := w.put(); perr != nil {
			return perr
		}
		return errOpen
	default:
		*st = ledger.ActionState{Step: ledger.StepFailed, Attempts: st.Attempts, Error: failure(err)}
		return w.ended(ctx, "failed")
	}
}

// ended stores an action's last state and counts it by result once the
// store took it (a state not stored is decided again later).
func (w *work) ended(ctx context.Context, result string) error {
	if err := w.put(); err != nil {
		return err
	}
	w.o.ended.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
	return nil
}

// outcomeUnknown reports whether X may have applied a call that failed.
func outcomeUnknown(err error) bool {
	var u interface{ OutcomeUnknown() bool }
	if errors.As(err, &u) && u.OutcomeUnknown() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
