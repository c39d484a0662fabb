package upstream

import (
	"context"
	"io"
	"testing"
	"time"
)

// eventually polls cond every 5 ms until it holds, failing t with what when
// it has not within d. It is for what nothing announces (the emulator's
// counters, a goroutine reaching a system call); the external tests call it
// as Eventually.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// uploadAll sends INIT, streams r (exactly p.TotalBytes bytes) through the
// APPENDs and sends FINALIZE: Begin, ReadFrom and Finish, aborting the
// upload on any failure, as a caller of the package does.
func uploadAll(ctx context.Context, c *Client, creds Credentials, p InitParams, r io.Reader, opts ...UploadOption) (*Media, error) {
	u, err := c.Begin(ctx, creds, p, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := u.ReadFrom(r); err != nil {
		u.Abort(err)
		return nil, err
	}
	m, err := u.Finish(ctx)
	if err != nil {
		u.Abort(err)
		return nil, err
	}
	return m, nil
}

// closeIdle closes the idle connections of c's transport, so that a leak
// check sees no keep-alive goroutines.
func closeIdle(c *Client) {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
