// Package boltledger is mediagw's embedded upload ledger: a bbolt file
// that one mediagw process owns (a second process opening it fails at
// once). Leases live in the process: a lease is held while a stream of
// this process drives the upload, and a process that died holds none, so
// after a restart every upload it was receiving reads as interrupted.
//
// Writes from parallel uploads are coalesced into shared transactions
// (bbolt's Batch), so the fsync of one does not serialise the others.
package boltledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/mediagw/mediagw/service/ledger"
)

var bucket = []byte("uploads")

// pendingBucket indexes the keys whose entry's actions are pending
// (scan.go); it is written in the same transaction as the entry.
var pendingBucket = []byte("uploads-pending")

// lockTimeout is how long Open waits for another process's lock on the
// file before giving up.
const lockTimeout = time.Second

// Ledger is a ledger.Ledger in a bbolt file.
type Ledger struct {
	db   *bolt.DB
	path string

	mu     sync.Mutex
	leases map[string]*lease // the live holder of each held key
}

var _ ledger.Ledger = (*Ledger)(nil)

// DefaultPath is mediagw/ledger.db under the user's state directory:
// $XDG_STATE_HOME, else ~/.local/state.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no state directory: set XDG_STATE_HOME or HOME, or pass --ledger: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "mediagw", "ledger.db"), nil
}

// Open opens (creating it and its directory when missing) the ledger at
// path. Uploads the file records as receiving or finalizing were left by
// a process that stopped: they become interrupted. Open fails at once
// with a message naming the file when another process has it open, or
// when it is not a readable ledger.
func Open(path string) (*Ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("ledger %s is in use by another process (another mediagw?); give each process its own --ledger", path)
	case err != nil:
		return nil, fmt.Errorf("ledger %s is not a readable ledger: %w", path, err)
	}
	// Batch coalesces the writes of concurrent uploads into one commit;
	// a waiting upload (after INIT, before FINALIZE) pays the delay, so it
	// is short: commits come at most every millisecond.
	db.MaxBatchDelay = time.Millisecond
	l := &Ledger{db: db, path: path, leases: map[string]*lease{}}
	if err := l.recover(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger %s is not a readable ledger: %w", path, err)
	}
	return l, nil
}

// recover checks the file, marks the uploads a stopped process left
// receiving or finalizing as interrupted, and builds the index of pending
// actions anew from the entries it reads (a file written before the index
// existed has none).
func (l *Ledger) recover() error {
	return l.db.Update(func(tx *bolt.Tx) error {
		var bad error
		for err := range tx.Check() {
			if bad == nil {
				bad = err
			}
		}
		if bad != nil {
			return bad
		}
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		type fix struct {
			k []byte
			v []byte
		}
		var fixes []fix
		var pending [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var e ledger.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %q: %w", k, err)
			}
			if e.ActionsPending() {
				pending = append(pending, append([]byte(nil), k...))
			}
			if e.Phase != ledger.PhaseReceiving && e.Phase != ledger.PhaseFinalizing {
				return nil
			}
			e.Phase = ledger.PhaseInterrupted
			e.Error = &ledger.Error{Code: "UNAVAILABLE", Message: "mediagw stopped while the upload was in progress"}
			nv, err := json.Marshal(&e)
			if err != nil {
				return err
			}
			fixes = append(fixes, fix{append([]byte(nil), k...), nv})
			return nil
		})
		if err != nil {
			return err
		}
		for _, f := range fixes {
			if err := b.Put(f.k, f.v); err != nil {
				return err
			}
		}
		return rebuildPending(tx, pending) // scan.go
	})
}

// Path returns the file's path.
func (l *Ledger) Path() string { return l.path }

// Get implements ledger.Ledger.
func (l *Ledger) Get(_ context.Context, key string) (*ledger.Entry, error) {
	e, err := l.read(key)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, ledger.ErrNoEntry
	}
	l.mu.Lock()
	e.Live = l.leases[key] != nil
	l.mu.Unlock()
	return e, nil
}

func (l *Ledger) read(key string) (*ledger.Entry, error) {
	var e *ledger.Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		e = &ledger.Entry{}
		return json.Unmarshal(v, e)
	})
	return e, err
}

// Acquire implements ledger.Ledger.
func (l *Ledger) Acquire(ctx context.Context, key string, takeover bool) (ledger.Lease, *ledger.Entry, error) {
	for {
		l.mu.Lock()
		held := l.leases[key]
		if held == nil {
			nl := &lease{l: l, key: key, stopped: make(chan struct{}), released: make(chan struct{})}
			l.leases[key] = nl
			l.mu.Unlock()
			e, err := l.read(key)
			if err != nil {
				_ = nl.Release(ctx)
				return nil, nil, err
			}
			return nl, e, nil
		}
		l.mu.Unlock()
		if !takeover {
			return nil, nil, ledger.ErrHeld
		}
		held.stop()
		select {
		case <-held.released:
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		}
	}
}

// Sweep implements ledger.Ledger.
func (l *Ledger) Sweep(_ context.Context, now time.Time) (int, error) {
	n := 0
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var gone [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var e ledger.Entry
			if json.Unmarshal(v, &e) != nil || !e.Expires.IsZero() && e.Expires.Before(now) {
				l.mu.Lock()
				live := l.leases[string(k)] != nil
				l.mu.Unlock()
				if !live {
					gone = append(gone, append([]byte(nil), k...))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(pendingBucket).Delete(k); err != nil {
				return err
			}
		}
		owners, err := sweepExpiring(tx, ownersBucket, now)
		if err != nil {
			return err
		}
		records, err := sweepExpiring(tx, recordsBucket, now)
		n = len(gone) + owners + records
		return err
	})
	return n, err
}

// DB is the ledger's bbolt file, for the other state mediagw keeps beside
// the ledger in its own buckets (the sealed OAuth 2.0 tokens); the ledger
// closes it.
func (l *Ledger) DB() *bolt.DB { return l.db }

// Close implements ledger.Ledger.
func (l *Ledger) Close() error { return l.db.Close() }

// lease is a holder's lease on one key, within this process.
type lease struct {
	l        *Ledger
	key      string
	stopOnce sync.Once
	stopped  chan struct{}
	relOnce  sync.Once
	released chan struct{}
}

func (s *lease) stop() { s.stopOnce.Do(func() { close(s.stopped) }) }

// held reports whether s is still its key's lease.
func (s *lease) held() bool {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.l.leases[s.key] == s
}

// Put implements ledger.Lease. The check that the lease is still held
// runs inside the write's transaction, so a lease released meanwhile
// writes nothing; the index of pending actions is written in the same
// transaction.
func (s *lease) Put(_ context.Context, e *ledger.Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.l.db.Batch(func(tx *bolt.Tx) error {
		if !s.held() {
			return ledger.ErrLeaseLost
		}
		if err := tx.Bucket(bucket).Put([]byte(s.key), v); err != nil {
			return err
		}
		return indexPending(tx, []byte(s.key), e.ActionsPending())
	})
}

// Stopped implements ledger.Lease.
func (s *lease) Stopped() <-chan struct{} { return s.stopped }

// Release implements ledger.Lease.
func (s *lease) Release(context.Context) error {
	s.relOnce.Do(func() {
		s.l.mu.Lock()
		if s.l.leases[s.key] == s {
			delete(s.l.leases, s.key)
		}
		s.l.mu.Unlock()
		s.stop()
		close(s.released)
	})
	return nil
}
