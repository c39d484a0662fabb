package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/redisstore"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
)

// TestOpenErrorsKeepThePasswordOut: a Redis that does not answer, or a URL
// go-redis refuses, fails Open at once with a message that names the
// server but not the password.
func TestOpenErrorsKeepThePasswordOut(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	_, err := redisstore.Open(ctx, "redis://mediagw:s3cret-pw@127.0.0.1:1/0", redisstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("Open of a Redis that does not answer: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open took %s", d)
	}
	for _, bad := range []string{"redis://mediagw:s3cret-pw@127.0.0.1:6379/notadb", "redis://mediagw:s3cret-pw@127.0.0.1:6379/0?bogus=1", "redis://u:s3cret-pw@[::1"} {
		_, err := redisstore.Open(ctx, bad, redisstore.Options{})
		if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("Open(%s): %v", strings.ReplaceAll(bad, "s3cret-pw", "…"), err)
		}
	}
}

// TestPrefixParameter: ?prefix= keeps two deployments apart on one Redis.
func TestPrefixParameter(t *testing.T) {
	ctx := context.Background()
	base := redistest.URL(t)
	p := redistest.Prefix(t)
	a, err := redisstore.Open(ctx, base+"?prefix="+p+"a:", redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := redisstore.Open(ctx, base+"?prefix="+p+"b:", redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Status().Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Status().Get(ctx, "k"); err == nil {
		t.Fatal("a value stored under one prefix is visible under another")
	}
	if v, err := a.Status().Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get under the same prefix: %q %v", v, err)
	}
}
