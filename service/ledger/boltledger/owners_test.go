package boltledger

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestExpiringRecords: owner records and media records outlive the process
// (a reopened file has them), expire with their media, and are swept.
func TestExpiringRecords(t *testing.T) {
	t.Parallel()
	type store struct {
		put func(l *Ledger, key string, v []byte, ttl time.Duration) error
		get func(l *Ledger, key string) ([]byte, bool, error)
	}
	ctx := context.Background()
	for name, s := range map[string]store{
		"owners": {
			put: func(l *Ledger, k string, v []byte, ttl time.Duration) error {
				return l.Owners().PutOwner(ctx, k, "svc", v, ttl)
			},
			get: func(l *Ledger, k string) ([]byte, bool, error) { return l.Owners().GetOwner(ctx, k) },
		},
		"records": {
			put: func(l *Ledger, k string, v []byte, ttl time.Duration) error { return l.Records().Put(ctx, k, v, ttl) },
			get: func(l *Ledger, k string) ([]byte, bool, error) { return l.Records().Get(ctx, k) },
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "ledger.db")
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.put(l, "1", []byte(`{"caller":"svc"}`), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.put(l, "2", []byte(`{"caller":"svc"}`), time.Millisecond); err != nil {
				t.Fatal(err)
			}
			_ = l.Close()
			if l, err = Open(path); err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if v, ok, err := s.get(l, "1"); err != nil || !ok || string(v) != `{"caller":"svc"}` {
				t.Fatalf("after reopening: %q %v %v", v, ok, err)
			}
			if _, ok, err := s.get(l, "3"); err != nil || ok {
				t.Fatalf("an unknown key: %v %v", ok, err)
			}
			late := time.Now().Add(time.Minute)
			if n, err := l.Sweep(ctx, late); err != nil || n != 1 {
				t.Fatalf("sweep: %d %v, want the expired record only", n, err)
			}
			if _, ok, _ := s.get(l, "2"); ok {
				t.Fatal("an expired record is still there")
			}
			if _, ok, _ := s.get(l, "1"); !ok {
				t.Fatal("a live record was swept")
			}
		})
	}
}
