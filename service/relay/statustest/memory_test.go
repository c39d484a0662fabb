package statustest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/relay"
	"github.com/mediagw/mediagw/service/relay/statustest"
)

func TestMemoryStoreConformance(t *testing.T) {
	statustest.Run(t, func(*testing.T) relay.StatusStore { return relay.NewMemoryStatusStore(0) }, statustest.Options{})
}

// TestMemoryStoreIsBounded: beyond its size the in-process store drops the
// least recently used entries, so remembered states cannot grow without
// bound.
func TestMemoryStoreIsBounded(t *testing.T) {
	ctx := context.Background()
	s := relay.NewMemoryStatusStore(3)
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, k, []byte(k), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "a"); err != nil { // a is now the most recent
		t.Fatal(err)
	}
	for _, k := range []string{"d", "e"} {
		_ = s.Put(ctx, k, []byte(k), time.Hour)
	}
	for k, kept := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true} {
		_, err := s.Get(ctx, k)
		if kept != (err == nil) {
			t.Errorf("%s: Get = %v, want kept %v", k, err, kept)
		}
		if !kept && !errors.Is(err, relay.ErrNoEntry) {
			t.Errorf("%s: %v, want ErrNoEntry", k, err)
		}
	}
}
