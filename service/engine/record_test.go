package engine

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
)

// TestCommittedAfterReplan: once an upload with a declared sha256 is cut
// again, Committed moves only to boundaries whose hash state is known, and
// the acknowledgements of the segments numbered again no longer count.
func TestCommittedAfterReplan(t *testing.T) {
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	lease, _, err := l.Acquire(context.Background(), "k", false)
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	e := &ledger.Entry{Key: "k", Phase: ledger.PhaseReceiving, SegmentSize: 4 * mib, Segments: 3,
		Start: ledger.Start{MediaType: "video/mp4", TotalBytes: 10 * mib, SHA256: "declared"}}
	r := newRecord(lease, e)
	defer r.close()
	d := sha256.New()
	// The bytes up to 6 MiB passed under the 4 MiB plan: a hash state at
	// 4 MiB only. Segment 1 of the old plan was (wrongly) acknowledged.
	r.hashAt(4*mib, d)
	r.segmentDone(1, 4*mib)
	// Cut again at 2 MiB from segment 0; later bytes are hashed at the new
	// boundaries 6 and 8 MiB.
	r.replanned(backend.Plan{{From: 0, Size: 2 * mib}}, 5)
	r.hashAt(6*mib, d)
	r.hashAt(8*mib, d)
	committed := func() int64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.e.Committed
	}
	if c := committed(); c != 0 {
		t.Fatalf("committed %d after the re-plan, want 0 (the old acknowledgement no longer counts)", c)
	}
	r.segmentDone(0, 2*mib)
	if c := committed(); c != 0 {
		t.Fatalf("committed %d with segment 0 acknowledged, want 0: no hash state at 2 MiB", c)
	}
	r.segmentDone(2, 2*mib)
	if c := committed(); c != 0 {
		t.Fatalf("committed %d with segments 0 and 2, want 0: segment 1 is missing", c)
	}
	r.segmentDone(1, 2*mib)
	if c := committed(); c != 6*mib {
		t.Fatalf("committed %d with segments 0-2, want 6 MiB (the last boundary with a hash state)", c)
	}
	r.segmentDone(4, 2*mib)
	r.segmentDone(3, 2*mib)
	if c := committed(); c != 10*mib {
		t.Fatalf("committed %d with every segment, want all 10 MiB", c)
	}
	if err := r.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Plan) != 1 || got.Plan[0] != (ledger.Run{From: 0, Size: 2 * mib}) || got.Segments != 5 || got.Committed != 10*mib {
		t.Fatalf("stored plan %v, %d segments, committed %d", got.Plan, got.Segments, got.Committed)
	}
}
