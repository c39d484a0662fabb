package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/service/tokens"
	"github.com/mediagw/mediagw/service/tokens/redisstore"
	"github.com/mediagw/mediagw/service/tokens/tokenstest"
)

func TestMain(m *testing.M) {
	code := redistest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// backend is a key prefix of a real Redis; every Open is another client,
// as another replica would have.
type backend struct {
	addr, prefix string
}

func (b *backend) client(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: b.addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (b *backend) Open(t *testing.T, kr *tokens.Keyring) tokens.Admin {
	t.Helper()
	s, err := redisstore.New(b.client(t), b.prefix, kr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Raw is every value under the prefix: strings, hashes, sets.
func (b *backend) Raw(t *testing.T) []byte {
	t.Helper()
	ctx := context.Background()
	rdb := b.client(t)
	var out []byte
	iter := rdb.Scan(ctx, 0, b.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		out = append(out, k...)
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			out = append(out, rdb.Get(ctx, k).Val()...)
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				out = append(out, f+"="+v+"\n"...)
			}
		case "set":
			for _, v := range rdb.SMembers(ctx, k).Val() {
				out = append(out, v+"\n"...)
			}
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConformance(t *testing.T) {
	addr := redistest.Addr(t)
	tokenstest.Run(t, func(t *testing.T) tokenstest.Backend {
		return &backend{addr: addr, prefix: redistest.Prefix(t)}
	})
}

// Every key has a TTL except those the package doc gives a reason for.
func TestKeyTTLs(t *testing.T) {
	b := &backend{addr: redistest.Addr(t), prefix: redistest.Prefix(t)}
	s := b.Open(t, tokenstest.NewKeyring(t, "k"))
	ctx := context.Background()
	held, release, err := s.Lock(ctx, "a", 30e9)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := s.CompareAndSwap(held, "a", 0, &oauth2.Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	rdb := b.client(t)
	want := map[string]bool{b.prefix + "tok:a": false, b.prefix + "tok-accounts": false, b.prefix + "tok-lease:a": true}
	keys := rdb.Keys(ctx, b.prefix+"*").Val()
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %d", keys, len(want))
	}
	for _, k := range keys {
		ttl := rdb.PTTL(ctx, k).Val()
		if hasTTL, known := want[k]; !known || hasTTL != (ttl > 0) {
			t.Errorf("key %s: PTTL %v", k, ttl)
		}
	}
}
