package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
)

// errFinished ends the context of an upload that finished successfully.
var errFinished = kindf(ErrAborted, "the upload was already finished")

// Finish checks that exactly TotalBytes were received (otherwise the upload
// fails with an error wrapping ErrShortUpload), waits for all APPENDs, and
// sends FINALIZE. A FINALIZE whose response was lost is retried, and X's
// "already finalized" answer to the retry counts as success; the media's
// processing state is then fetched with STATUS. ctx bounds Finish in
// addition to Begin's context; if it ends, the upload is aborted.
// The returned Media's Processing is nil when the media is ready; otherwise
// X processes it asynchronously and [Client.Status] reports how far it got.
func (u *Upload) Finish(ctx context.Context) (*Media, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	defer u.dropIfFailed()
	if err := u.usable(); err != nil {
		u.wg.Wait()
		return nil, err
	}
	u.finished = true
	if u.received < u.p.TotalBytes {
		err := kindf(ErrShortUpload, "received %d of the declared %d bytes", u.received, u.p.TotalBytes)
		u.fail(err)
		u.wg.Wait()
		return nil, err
	}
	fctx, cancel := context.WithCancelCause(u.ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	defer stop()

	for {
		appended := make(chan struct{})
		go func() { u.wg.Wait(); close(appended) }()
		select {
		case <-appended:
		case <-fctx.Done():
			u.fail(context.Cause(fctx))
			<-appended
			return nil, u.failure()
		}
		if err := u.failure(); err != nil {
			return nil, err
		}
		if !u.replanDue() {
			u.mu.Lock()
			u.releaseKeptLocked()
			u.mu.Unlock()
			break
		}
		// X refused segments as too large: cut them again and wait for
		// the new ones. ctx bounds this too: the new segments' APPENDs
		// run under Begin's context, which fctx ending cancels.
		stopReplan := context.AfterFunc(fctx, func() { u.fail(context.Cause(fctx)) })
		err := u.replan()
		stopReplan()
		if err != nil {
			return nil, err
		}
	}
	m, err := u.c.finalize(fctx, u.creds, u.mediaID, &u.retries)
	if err != nil {
		u.fail(err)
		return nil, err
	}
	if m.ID == "" {
		m.ID = u.mediaID
	}
	if m.Key == "" {
		m.Key = u.key
	}
	if m.Size == 0 {
		m.Size = u.p.TotalBytes
	}
	u.cancel(errFinished)
	return m, nil
}

// finalize sends FINALIZE, tolerating "already finalized" on a retry.
func (c *Client) finalize(ctx context.Context, creds Credentials, id string, retries *atomic.Int64) (*Media, error) {
	r := c.d.finalizeReq(id)
	r.mediaID = id
	m, done, err := c.call(ctx, creds, r, callOpts{alreadyDone: alreadyFinalized, retries: retries})
	if err != nil {
		return nil, err
	}
	if !done {
		return m, nil
	}
	// An earlier attempt finalized the media but its answer was lost: ask
	// STATUS for the processing state. "Not found" means the media never
	// needed processing, i.e. it is ready.
	c.log.Debug("upstream: FINALIZE already applied by an earlier attempt", "media_id", id)
	m, err = c.status(ctx, creds, id)
	if notFound(err) {
		return &Media{ID: id}, nil
	}
	return m, err
}

// alreadyFinalized recognises X's answer to a second FINALIZE: v2 400
// "BadRequest: Media already finalized", v1.1 code 324 "Media id already
// finalized.".
func alreadyFinalized(e *APIError) bool {
	if e.HTTPStatus < 400 || e.HTTPStatus >= 500 {
		return false
	}
	return strings.Contains(strings.ToLower(e.Detail+" "+e.Title), "already finalized")
}

// notFound recognises STATUS on media that never had processing: v2 400
// "BadRequest: Not found", or 404.
func notFound(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.HTTPStatus == http.StatusNotFound ||
		(ae.HTTPStatus == http.StatusBadRequest && strings.Contains(strings.ToLower(ae.Detail), "not found"))
}
