package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

// TestWatchReconnects: the status stream is reset after its first state;
// Watch reconnects by itself and follows the processing to its end, over
// gRPC and REST.
func TestWatchReconnects(t *testing.T) {
	st := newStack(t, []string{"--processing-time=2s"})
	for i, rest := range []bool{false, true} {
		target := st.m.grpcAddr
		if rest {
			target = st.m.httpAddr
		}
		p := newProxy(t, target)
		var retries atomic.Int64
		c := newClient(t, p.addr(), rest, client.WithRetryNotify(func(r client.Retry) {
			if r.Op == "watch" {
				retries.Add(1)
			}
		}))
		res, err := c.Upload(context.Background(), client.File(writeFile(t, mp4(200<<10, uint64(i)))), client.UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var states []mediagwv1.ProcessingState
		var cut atomic.Bool
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		final, err := c.Watch(ctx, res.MediaID, func(s *mediagwv1.ProcessingStatus) {
			states = append(states, s.GetState())
			if cut.CompareAndSwap(false, true) {
				p.resetAll()
			}
		})
		cancel()
		if err != nil {
			t.Fatalf("rest %v: %v (states %v)", rest, err, states)
		}
		if final.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED || retries.Load() < 1 {
			t.Fatalf("rest %v: final %v after %d reconnects (states %v)", rest, final.GetState(), retries.Load(), states)
		}
		t.Logf("rest %v: states %v, %d reconnects", rest, states, retries.Load())
	}
}
