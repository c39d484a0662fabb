// Package tokenstest is the conformance suite of tokens.Store
// implementations: versions and compare-and-swap, the fenced lease (mutual
// exclusion, expiry, a stale holder's write refused, waiters woken at
// release), sealing (no token string in the stored bytes; a wrong key fails
// naming the key file; rotation with an old key), Accounts and Delete.
package tokenstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/tokens"
)

// Backend is one test's storage: every store Open returns reads the same
// data, as a restarted process or a second replica would.
type Backend interface {
	// Open returns a store over the backend's data sealing with kr. A
	// backend one process owns (a file) may close the stores it returned
	// before: the suite uses only the newest one then.
	Open(t *testing.T, kr *tokens.Keyring) tokens.Admin
	// Raw returns every byte the backend holds (the file, or every value
	// under the test's prefix).
	Raw(t *testing.T) []byte
}

// Run runs the suite; newBackend is called once per subtest.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		f    func(*testing.T, Backend)
	}{
		{"Versions", testVersions},
		{"WritesNeedTheLease", testNoLease},
		{"ReleasedLeaseFences", testReleased},
		{"ExpiredLeaseFences", testExpired},
		{"MutualExclusion", testExclusion},
		{"WaiterWokenAtRelease", testWaiter},
		{"SealedAtRest", testSealed},
		{"WrongKeyNamesFile", testWrongKey},
		{"KeyRotation", testRotation},
		{"AccountsAndDelete", testDelete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newBackend(t)) })
	}
}

// NewKeyring writes a fresh random key to a file in a temporary directory
// and returns the keyring sealing with it.
func NewKeyring(t testing.TB, name string) *tokens.Keyring {
	t.Helper()
	return tokens.NewKeyring(NewKey(t, name))
}

// NewKey writes a fresh random key file and loads it.
func NewKey(t testing.TB, name string) *tokens.Key {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	raw := make([]byte, tokens.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := tokens.LoadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func token(n int) *oauth2.Token {
	return (&oauth2.Token{AccessToken: "ACCESS-secret-" + strconv.Itoa(n), RefreshToken: "REFRESH-secret-" + strconv.Itoa(n),
		TokenType: "bearer", Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}).
		WithExtra(map[string]any{"scope": "media.write offline.access"})
}

func lock(t *testing.T, s tokens.Store, account string, ttl time.Duration) (context.Context, func()) {
	t.Helper()
	held, release, err := s.Lock(ctxT(t), account, ttl)
	if err != nil {
		t.Fatalf("Lock(%s): %v", account, err)
	}
	t.Cleanup(release)
	return held, release
}

func cas(t *testing.T, s tokens.Store, ctx context.Context, account string, v uint64, tok *oauth2.Token) uint64 {
	t.Helper()
	nv, err := s.CompareAndSwap(ctx, account, v, tok)
	if err != nil {
		t.Fatalf("CompareAndSwap(%s, %d): %v", account, v, err)
	}
	return nv
}

func testVersions(t *testing.T, b Backend) {
	key := NewKey(t, "k")
	s := b.Open(t, tokens.NewKeyring(key))
	ctx := ctxT(t)
	if tok, v, err := s.Load(ctx, "acct"); tok != nil || v != 0 || err != nil {
		t.Fatalf("Load of an unknown account = %v, %d, %v; want nil, 0, nil", tok, v, err)
	}
	held, _ := lock(t, s, "acct", 10*time.Second)
	v1 := cas(t, s, held, "acct", 0, token(1))
	if v1 == 0 {
		t.Fatal("first version is 0")
	}
	if _, err := s.CompareAndSwap(held, "acct", 0, token(2)); !errors.Is(err, tokens.ErrConflict) {
		t.Fatalf("CompareAndSwap over a stale version: %v, want ErrConflict", err)
	}
	v2 := cas(t, s, held, "acct", v1, token(2))
	if v2 <= v1 {
		t.Fatalf("versions %d then %d: want growing", v1, v2)
	}
	got, v, err := s.Load(ctx, "acct")
	if err != nil || v != v2 {
		t.Fatalf("Load = version %d, %v; want %d", v, err, v2)
	}
	want := token(2)
	if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken || got.TokenType != want.TokenType ||
		!got.Expiry.Equal(want.Expiry) || got.Extra("scope") != "media.write offline.access" {
		t.Fatalf("Load = %+v scope %v; want %+v", got, got.Extra("scope"), want)
	}
	// Another store over the same data (a restart, a replica) reads it.
	if got, _, err := b.Open(t, tokens.NewKeyring(key)).Load(ctx, "acct"); err != nil || got.RefreshToken != want.RefreshToken {
		t.Fatalf("a second store read %v, %v", got, err)
	}
}

func testNoLease(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	if _, err := s.CompareAndSwap(ctxT(t), "a", 0, token(1)); !errors.Is(err, tokens.ErrNoLease) {
		t.Fatalf("write without a lease: %v, want ErrNoLease", err)
	}
	other, _ := lock(t, s, "b", 10*time.Second)
	if _, err := s.CompareAndSwap(other, "a", 0, token(1)); !errors.Is(err, tokens.ErrNoLease) {
		t.Fatalf("write under another account's lease: %v, want ErrNoLease", err)
	}
	if err := s.Delete(ctxT(t), "a"); !errors.Is(err, tokens.ErrNoLease) {
		t.Fatalf("delete without a lease: %v, want ErrNoLease", err)
	}
}

func testReleased(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	held, release := lock(t, s, "a", 10*time.Second)
	release()
	release() // idempotent
	select {
	case <-held.Done():
	default:
		t.Fatal("the lease context is not done after release")
	}
	if _, err := s.CompareAndSwap(held, "a", 0, token(1)); !errors.Is(err, tokens.ErrLeaseLost) {
		t.Fatalf("write after release: %v, want ErrLeaseLost", err)
	}
}

func testExpired(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	ttl := 300 * time.Millisecond
	held, _ := lock(t, s, "a", ttl)
	took := make(chan context.Context, 1)
	go func() {
		h, rel, err := s.Lock(ctxT(t), "a", 10*time.Second)
		if err != nil {
			took <- nil
			return
		}
		t.Cleanup(rel)
		took <- h
	}()
	select {
	case <-held.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the lease context did not end within 5 s of a 300 ms TTL")
	}
	var second context.Context
	select {
	case second = <-took:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter did not get an expired lease within 5 s")
	}
	if second == nil {
		t.Fatal("the waiting Lock failed")
	}
	// The first holder's lease is gone: its write is refused, though the
	// second holder wrote nothing.
	if _, err := s.CompareAndSwap(held, "a", 0, token(1)); !errors.Is(err, tokens.ErrLeaseLost) {
		t.Fatalf("write after the lease expired: %v, want ErrLeaseLost", err)
	}
	cas(t, s, second, "a", 0, token(2))
}

func testExclusion(t *testing.T, b Backend) {
	const n = 20
	s := b.Open(t, NewKeyring(t, "k"))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			held, release, err := s.Lock(ctxT(t), "a", 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer release()
			tok, v, err := s.Load(held, "a")
			if err != nil {
				errs <- err
				return
			}
			next := 1
			if tok != nil {
				next, _ = strconv.Atoi(strings.TrimPrefix(tok.AccessToken, "ACCESS-secret-"))
				next++
			}
			if _, err := s.CompareAndSwap(held, "a", v, token(next)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("under the lease: %v", err)
	}
	tok, _, err := s.Load(ctxT(t), "a")
	if err != nil || tok == nil || tok.AccessToken != "ACCESS-secret-"+strconv.Itoa(n) {
		t.Fatalf("after %d locked increments: %v, %v", n, tok, err)
	}
}

func testWaiter(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	_, release := lock(t, s, "a", time.Minute)
	got := make(chan error, 1)
	go func() {
		_, rel, err := s.Lock(ctxT(t), "a", time.Minute)
		if err == nil {
			rel()
		}
		got <- err
	}()
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter was not given the lease within 5 s of its release (TTL 1 min)")
	}
	// A waiter gives up with its context.
	_, _ = lock(t, s, "b", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := s.Lock(ctx, "b", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ending context: %v", err)
	}
}

func testSealed(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	held, _ := lock(t, s, "a", 10*time.Second)
	tok := token(7)
	cas(t, s, held, "a", 0, tok)
	raw := b.Raw(t)
	if !bytes.Contains(raw, []byte("mgtok1:")) {
		t.Fatalf("no sealed value in the %d stored bytes", len(raw))
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, "secret-7"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the stored bytes contain %q", secret)
		}
	}
}

func testWrongKey(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "right.key"))
	held, _ := lock(t, s, "a", 10*time.Second)
	cas(t, s, held, "a", 0, token(1))
	wrong := NewKey(t, "wrong.key")
	_, _, err := b.Open(t, tokens.NewKeyring(wrong)).Load(ctxT(t), "a")
	if err == nil || !strings.Contains(err.Error(), wrong.Path()) {
		t.Fatalf("Load with the wrong key: %v; want an error naming %s", err, wrong.Path())
	}
}

func testRotation(t *testing.T, b Backend) {
	oldKey := NewKey(t, "old.key")
	s := b.Open(t, tokens.NewKeyring(oldKey))
	held, release := lock(t, s, "a", 10*time.Second)
	cas(t, s, held, "a", 0, token(1))
	release()
	newKey := NewKey(t, "new.key")
	rotated := b.Open(t, tokens.NewKeyring(newKey, oldKey))
	if tok, _, err := rotated.Load(ctxT(t), "a"); err != nil || tok.RefreshToken != token(1).RefreshToken {
		t.Fatalf("Load with the old key read-only: %v, %v", tok, err)
	}
	if n, err := tokens.Reseal(ctxT(t), rotated, 10*time.Second); err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v", n, err)
	}
	// (A file may still hold the old value in a freed page, sealed with the
	// old key: that it is not read is checked below.)
	if !bytes.Contains(b.Raw(t), []byte(newKey.ID())) {
		t.Error("after Reseal no stored value is sealed with the new key")
	}
	if tok, _, err := b.Open(t, tokens.NewKeyring(newKey)).Load(ctxT(t), "a"); err != nil || tok.RefreshToken != token(1).RefreshToken {
		t.Fatalf("Load with the new key alone after Reseal: %v, %v", tok, err)
	}
}

func testDelete(t *testing.T, b Backend) {
	s := b.Open(t, NewKeyring(t, "k"))
	for _, a := range []string{"zeta", "alpha"} {
		held, release := lock(t, s, a, 10*time.Second)
		cas(t, s, held, a, 0, token(1))
		release()
	}
	got, err := s.Accounts(ctxT(t))
	if err != nil || strings.Join(got, ",") != "alpha,zeta" {
		t.Fatalf("Accounts = %v, %v", got, err)
	}
	held, _ := lock(t, s, "zeta", 10*time.Second)
	if err := s.Delete(held, "zeta"); err != nil {
		t.Fatal(err)
	}
	if tok, v, err := s.Load(ctxT(t), "zeta"); tok != nil || v != 0 || err != nil {
		t.Fatalf("Load after Delete = %v, %d, %v", tok, v, err)
	}
	if got, _ := s.Accounts(ctxT(t)); strings.Join(got, ",") != "alpha" {
		t.Fatalf("Accounts after Delete = %v", got)
	}
	// A deleted account starts again from version 0.
	cas(t, s, held, "zeta", 0, token(2))
}
