package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"google.golang.org/grpc/codes"
)

// admission bounds the uploads running at once. An upload that finds
// every slot taken waits, first come first served, for at most wait, in a
// queue of at most maxQueue; past either it is refused with
// ResourceExhausted and a retry delay, before anything of it is read.
type admission struct {
	slots    chan struct{}
	queued   atomic.Int64
	maxQueue int64
	wait     time.Duration
}

func newAdmission(max, maxQueue int, wait time.Duration) *admission {
	return &admission{slots: make(chan struct{}, max), maxQueue: int64(maxQueue), wait: wait}
}

// busyRetry is the retry delay of a refused upload.
const busyRetry = time.Second

// enter takes a slot; release gives it back.
func (a *admission) enter(ctx context.Context) (release func(), err error) {
	release = func() { <-a.slots }
	select {
	case a.slots <- struct{}{}:
		return release, nil
	default:
	}
	if a.queued.Add(1) > a.maxQueue {
		a.queued.Add(-1)
		return nil, a.busy(fmt.Sprintf("mediagw is at its limit of %d concurrent uploads, and %d more are waiting; try again shortly", cap(a.slots), a.maxQueue))
	}
	defer a.queued.Add(-1)
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, a.busy(fmt.Sprintf("mediagw is at its limit of %d concurrent uploads and none ended within %s; try again shortly", cap(a.slots), a.wait))
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (a *admission) busy(msg string) error {
	return &apierr.Error{Code: codes.ResourceExhausted, Msg: msg, Retry: busyRetry}
}
