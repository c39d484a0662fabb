package tokens

import (
	"context"
	"time"
)

// leaseKey is the context key of a held lease.
type leaseKey struct{}

// leaseInfo is what a held lease context carries.
type leaseInfo struct {
	store   any
	account string
	fence   string
}

// WithLease is for implementations: it returns a context carrying the lease
// fence of account in store, cancelled at expires or by the returned cancel.
func WithLease(ctx context.Context, store any, account, fence string, expires time.Time) (context.Context, context.CancelFunc) {
	ctx = context.WithValue(ctx, leaseKey{}, leaseInfo{store: store, account: account, fence: fence})
	return context.WithDeadlineCause(ctx, expires, ErrLeaseLost)
}

// LeaseOf is for implementations: the fence of the lease ctx carries for
// account in store. It fails with ErrNoLease when ctx carries none, and
// with ErrLeaseLost when the lease's context already ended.
func LeaseOf(ctx context.Context, store any, account string) (string, error) {
	li, ok := ctx.Value(leaseKey{}).(leaseInfo)
	if !ok || li.store != store || li.account != account {
		return "", ErrNoLease
	}
	if ctx.Err() != nil {
		return "", ErrLeaseLost
	}
	return li.fence, nil
}
