package boltledger

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestOwners: records outlive the process (a reopened file has them),
// expire with their media, and are swept.
func TestOwners(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := l.Owners()
	if err := o.PutOwner(ctx, "1", "svc", []byte(`{"caller":"svc"}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := o.PutOwner(ctx, "2", "svc", []byte(`{"caller":"svc"}`), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if l, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o = l.Owners()
	if v, ok, err := o.GetOwner(ctx, "1"); err != nil || !ok || string(v) != `{"caller":"svc"}` {
		t.Fatalf("after reopening: %q %v %v", v, ok, err)
	}
	if _, ok, err := o.GetOwner(ctx, "3"); err != nil || ok {
		t.Fatalf("an unknown media id: %v %v", ok, err)
	}
	late := time.Now().Add(time.Minute)
	if n, err := l.Sweep(ctx, late); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want the expired record only", n, err)
	}
	if _, ok, _ := o.GetOwner(ctx, "2"); ok {
		t.Fatal("an expired record is still there")
	}
	if _, ok, _ := o.GetOwner(ctx, "1"); !ok {
		t.Fatal("a live record was swept")
	}
}
