// Package boltstore is a tokens.Store in a bucket of a bbolt file (the
// upload ledger's file, or one of its own). The file belongs to one process,
// so leases live in that process: a lease ends when it is released or its
// TTL passes. Values are sealed with a tokens.Keyring; the bucket holds,
// per account, an 8-byte big-endian version followed by the sealed token.
package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/tokens"
)

// Store is a tokens.Admin in one bucket of an open bbolt database.
type Store struct {
	db     *bolt.DB
	bucket []byte
	keys   *tokens.Keyring
	now    func() time.Time

	mu     sync.Mutex
	leases map[string]*lease
}

var _ tokens.Admin = (*Store)(nil)

type lease struct {
	fence   string
	expires time.Time
	done    chan struct{} // closed when released
}

// New returns a store in bucket of db (created when missing), sealing with
// keys. It does not own db: closing db is the caller's.
func New(db *bolt.DB, bucket string, keys *tokens.Keyring) (*Store, error) {
	if bucket == "" || keys == nil {
		return nil, errors.New("boltstore: a bucket name and a keyring are needed")
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucket))
		return err
	}); err != nil {
		return nil, fmt.Errorf("token store in %s: %w", db.Path(), err)
	}
	return &Store{db: db, bucket: []byte(bucket), keys: keys, now: time.Now, leases: map[string]*lease{}}, nil
}

// Load implements tokens.Store.
func (s *Store) Load(_ context.Context, account string) (*oauth2.Token, uint64, error) {
	var (
		v      uint64
		sealed []byte
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket).Get([]byte(account))
		if b == nil {
			return nil
		}
		if len(b) < 8 {
			return fmt.Errorf("the stored token of account %q is damaged", account)
		}
		v, sealed = binary.BigEndian.Uint64(b), append([]byte(nil), b[8:]...)
		return nil
	})
	if err != nil || sealed == nil {
		return nil, 0, err
	}
	tok, err := s.keys.Open(account, sealed)
	if err != nil {
		return nil, 0, err
	}
	return tok, v, nil
}

// held checks, with s.mu held, that ctx carries account's live lease.
func (s *Store) held(ctx context.Context, account string) error {
	fence, err := tokens.LeaseOf(ctx, s, account)
	if err != nil {
		return err
	}
	l := s.leases[account]
	if l == nil || l.fence != fence || !s.now().Before(l.expires) {
		return tokens.ErrLeaseLost
	}
	return nil
}

// CompareAndSwap implements tokens.Store.
func (s *Store) CompareAndSwap(ctx context.Context, account string, version uint64, tok *oauth2.Token) (uint64, error) {
	sealed, err := s.keys.Seal(account, tok)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.held(ctx, account); err != nil {
		return 0, err
	}
	var next uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(s.bucket)
		var cur uint64
		if b := bk.Get([]byte(account)); len(b) >= 8 {
			cur = binary.BigEndian.Uint64(b)
		}
		if cur != version {
			return tokens.ErrConflict
		}
		next = cur + 1
		val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(sealed)), next)
		return bk.Put([]byte(account), append(val, sealed...))
	})
	if err != nil {
		return 0, err
	}
	return next, nil
}

// Delete implements tokens.Admin.
func (s *Store) Delete(ctx context.Context, account string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.held(ctx, account); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(s.bucket).Delete([]byte(account)) })
}

// Accounts implements tokens.Admin.
func (s *Store) Accounts(context.Context) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(s.bucket).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}

// Lock implements tokens.Store.
func (s *Store) Lock(ctx context.Context, account string, ttl time.Duration) (context.Context, func(), error) {
	if ttl <= 0 {
		return nil, nil, errors.New("boltstore: a lease needs a positive TTL")
	}
	for {
		s.mu.Lock()
		l := s.leases[account]
		now := s.now()
		if l == nil || !now.Before(l.expires) {
			nl := &lease{fence: rand.Text(), expires: now.Add(ttl), done: make(chan struct{})}
			s.leases[account] = nl
			s.mu.Unlock()
			held, cancel := tokens.WithLease(ctx, s, account, nl.fence, nl.expires)
			var once sync.Once
			release := func() {
				once.Do(func() {
					cancel()
					s.mu.Lock()
					if s.leases[account] == nl {
						delete(s.leases, account)
					}
					s.mu.Unlock()
					close(nl.done)
				})
			}
			return held, release, nil
		}
		s.mu.Unlock()
		t := time.NewTimer(l.expires.Sub(now))
		select {
		case <-l.done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, context.Cause(ctx)
		}
		t.Stop()
	}
}
