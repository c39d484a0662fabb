// Package tokens is the contract of mediagw's OAuth 2.0 token store: where
// the newest token pair of each X account is kept, so that a restart or a
// second replica continues with the pair the last refresh returned instead
// of the configured one, which X spent at that refresh (refresh tokens are
// single-use).
//
// [Store] uses only the standard library and golang.org/x/oauth2 types, so
// that the package refreshing tokens (upstream) declares the same method set
// for itself without importing this one. Implementations: package
// boltstore (a bucket of the bbolt file, one process) and package redisstore
// (Redis, shared by replicas); package tokenstest is the conformance suite
// both pass.
//
// # Versions and the refresh lease
//
// Every stored token has a version, a counter that grows with each write;
// Load returns it and CompareAndSwap writes only over the version it names
// (0: the account was never stored), so a writer that read an old token
// cannot overwrite a newer one. A refresh takes the account's lease first
// (Lock): the context Lock returns carries the lease, and every write must
// be made with such a context (a write without one fails with
// [ErrNoLease]); a write made after the lease expired or was released fails
// with [ErrLeaseLost] even if no other writer came since (fencing). The
// context is cancelled when the lease's TTL runs out or it is released, so
// a refresh still running then is stopped before another holder can start
// one. Lock waits while another holder has the lease: the waiter then
// re-reads the store and finds the token the holder stored.
//
// # Sealed at rest
//
// Tokens are sealed with AES-256-GCM ([Keyring]) under a 32-byte key read
// from a file; the account name is the additional data, so a value moved to
// another account does not open. Each value names the key that sealed it
// (the key id, a hash of the key, not secret). Only the version is stored
// in clear.
//
// Key rotation: make a new key file (32 random bytes, e.g. `head -c 32
// /dev/urandom > new.key`), start mediagw with the new file as the key and
// the old one among the read-only keys ([NewKeyring]'s old keys): values
// sealed with the old key still open, and each is sealed with the new key
// at its next write (the next refresh, login or [Reseal]). Once [Reseal]
// ran, or every account refreshed, the old key can be dropped. (A bbolt file
// may keep an overwritten value in a freed page until the page is reused:
// still sealed, with the old key; `bbolt compact` rewrites the file without
// them.) A value whose
// key is not in the keyring fails with an error naming the key file, so a
// wrong key is found at startup rather than at the first upload.
package tokens

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// Store keeps the newest OAuth 2.0 token of each account.
type Store interface {
	// Load returns the stored token of account and its version. An account
	// the store has never seen (or one deleted) is (nil, 0, nil).
	Load(ctx context.Context, account string) (tok *oauth2.Token, version uint64, err error)
	// CompareAndSwap stores tok for account if the stored version is still
	// version (0: none stored) and returns the new version. ctx must come
	// from Lock on the same account. A stored version other than version is
	// [ErrConflict]; a lease that ended is [ErrLeaseLost].
	CompareAndSwap(ctx context.Context, account string, version uint64, tok *oauth2.Token) (newVersion uint64, err error)
	// Lock takes account's lease for ttl, waiting while another holder has
	// it (until ctx ends). The returned context carries the lease for
	// writes and is cancelled when the lease ends: release, or ttl passed.
	// release is idempotent.
	Lock(ctx context.Context, account string, ttl time.Duration) (held context.Context, release func(), err error)
}

// Admin is what an operator does on top of Store: list the stored accounts
// and forget one (logout).
type Admin interface {
	Store
	// Accounts lists the accounts with a stored token, sorted.
	Accounts(ctx context.Context) ([]string, error)
	// Delete removes account's token; ctx must come from Lock.
	Delete(ctx context.Context, account string) error
}

// Errors of CompareAndSwap and Delete; test with errors.Is.
var (
	// ErrConflict: another writer stored a newer version first.
	ErrConflict = errors.New("the stored token changed since it was read")
	// ErrNoLease: a write was made without the account's lease.
	ErrNoLease = errors.New("a token is written only under the account's lease")
	// ErrLeaseLost: the lease the write was made under has ended.
	ErrLeaseLost = errors.New("the account's token lease ended before the write")
)

// Reseal writes every stored token again, sealed with the keyring's current
// key: the last step of a key rotation.
func Reseal(ctx context.Context, s Admin, ttl time.Duration) (int, error) {
	names, err := s.Accounts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range names {
		held, release, err := s.Lock(ctx, a, ttl)
		if err != nil {
			return n, err
		}
		tok, v, err := s.Load(held, a)
		if err == nil && tok != nil {
			_, err = s.CompareAndSwap(held, a, v, tok)
		}
		release()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
