// Package ledger declares mediagw's upload ledger: the record of every
// upload that carries an idempotency key, which lets it survive broken
// streams, restarts and deploys. Its implementations are bbolt
// (ledger/boltledger, the embedded default) and Redis (service/redisstore,
// shared by replicas); one conformance suite (ledger/ledgertest) holds
// both to the same semantics.
package ledger

import (
	"context"
	"errors"
	"time"
)

// Ledger records the uploads that carry an idempotency key, so that they
// survive broken streams, restarts and deploys: a completed key answers
// its stored response, an interrupted one is resumed where X's
// acknowledgements end.
//
// Keys are opaque to the ledger; the service scopes them per caller.
type Ledger interface {
	// Get returns the entry of key, with Live set when a holder has its
	// lease now, or ErrNoEntry.
	Get(ctx context.Context, key string) (*Entry, error)
	// Acquire takes key's lease for a new holder and returns it with the
	// entry as stored (nil for a key never written). A key whose lease a
	// live holder has is ErrHeld, unless takeover is set: then the holder
	// is asked to give the upload up (its lease's Stopped channel closes)
	// and Acquire waits for its release until ctx ends.
	Acquire(ctx context.Context, key string, takeover bool) (Lease, *Entry, error)
	// Sweep removes the entries whose Expires is before now and returns
	// how many it removed.
	Sweep(ctx context.Context, now time.Time) (int, error)
	// Close releases the ledger's resources.
	Close() error
}

// Lease is a holder's exclusive right to write one key.
type Lease interface {
	// Put stores e under the lease's key. It is fenced: once the lease is
	// no longer this holder's (it expired, or was taken over), Put fails
	// with ErrLeaseLost and stores nothing.
	Put(ctx context.Context, e *Entry) error
	// Stopped is closed when another holder asks for the key (a resume
	// taking over) or the lease is lost; the holder must then stop and
	// release. A lease that can be lost may also have a method Cause()
	// error, which says why once it was lost (nil when it was asked for).
	Stopped() <-chan struct{}
	// Release gives the key up; it is safe to call more than once.
	Release(ctx context.Context) error
}

// Ledger errors.
var (
	ErrNoEntry   = errors.New("ledger: no entry for the key")
	ErrHeld      = errors.New("ledger: the key's lease is held by a live holder")
	ErrLeaseLost = errors.New("ledger: the lease is no longer this holder's")
)

// Phase is where a ledger entry stands; the values are UploadPhase names
// without their prefix.
type Phase string

// The phases of an entry.
const (
	PhaseReceiving   Phase = "RECEIVING"
	PhaseInterrupted Phase = "INTERRUPTED"
	PhaseFinalizing  Phase = "FINALIZING"
	PhaseCompleted   Phase = "COMPLETED"
	PhaseFailed      Phase = "FAILED"
)

// Entry is the record of one upload. It is stored as JSON.
type Entry struct {
	Key   string `json:"key"`
	Phase Phase  `json:"phase"`
	// Start holds the upload's parameters as first given.
	Start Start `json:"start"`
	// MediaID, MediaKey and Expires are X's, from INIT.
	MediaID  string    `json:"media_id,omitempty"`
	MediaKey string    `json:"media_key,omitempty"`
	Expires  time.Time `json:"expires"`
	// SegmentSize and Segments are the upload's plan: Segments segments
	// of SegmentSize bytes, the last one shorter.
	SegmentSize int64 `json:"segment_size,omitempty"`
	Segments    int   `json:"segments,omitempty"`
	// Plan, once X refused segments as too large and the rest was cut
	// smaller, is the plan since then; SegmentSize is its first run's
	// size and Segments the number of segments it cuts.
	Plan []Run `json:"plan,omitempty"`
	// Acked holds one bit per segment X acknowledged (bit i%8 of byte
	// i/8).
	Acked []byte `json:"acked,omitempty"`
	// Committed is the end of the run of acknowledged segments from byte
	// 0: where a resume starts.
	Committed int64 `json:"committed"`
	// HashState is the SHA-256 state of the first Committed bytes when
	// the caller declared a sha256 (crypto/sha256's binary marshaling).
	HashState []byte `json:"hash_state,omitempty"`
	// Response is the UploadResponse (protojson) once COMPLETED.
	Response []byte `json:"response,omitempty"`
	// Error is the upload's error once FAILED, or why it was interrupted.
	Error *Error `json:"error,omitempty"`
	// Actions are the metadata and subtitles to apply once the media is
	// usable, and their state; nil when the upload named none.
	Actions *Actions `json:"actions,omitempty"`
	// Verdict is what the media inspection decided, once it did; a resume
	// or replay answers with it without asking X again.
	Verdict *Verdict `json:"verdict,omitempty"`
	// Trace is the W3C traceparent of the trace that started the upload.
	Trace   string    `json:"trace,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	// Live is set by Get when a holder has the key's lease now.
	Live bool `json:"-"`
}

// Run is segments of Size bytes from index From on, up to the next run of
// a Plan.
type Run struct {
	From int   `json:"from"`
	Size int64 `json:"size"`
}

// Start is an upload's parameters as first given.
type Start struct {
	MediaType        string   `json:"media_type"`
	Category         string   `json:"category,omitempty"`
	TotalBytes       int64    `json:"total_bytes"`
	AdditionalOwners []string `json:"additional_owners,omitempty"`
	Shared           bool     `json:"shared,omitempty"`
	SHA256           string   `json:"sha256,omitempty"`
	Account          string   `json:"account,omitempty"`
}

// Error is an error as the ledger keeps it.
type Error struct {
	// Code is the gRPC code name (INVALID_ARGUMENT, UNAVAILABLE…).
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Verdict is the media inspection's decision on an upload.
type Verdict struct {
	// Inspection is the mediagw.v1.MediaInspection (protojson): what was
	// read from the bytes, with the violations.
	Inspection []byte `json:"inspection,omitempty"`
	// Violations are the rules the media breaks; Enforced says they
	// refused the upload (--media-checks enforce), else they were only
	// warned about.
	Violations []Violation `json:"violations,omitempty"`
	Enforced   bool        `json:"enforced,omitempty"`
}

// Violation is one media rule an upload breaks.
type Violation struct {
	Reason      string `json:"reason"`
	Field       string `json:"field"`
	Limit       string `json:"limit,omitempty"`
	Actual      string `json:"actual,omitempty"`
	Description string `json:"description"`
}

// IsAcked reports whether segment i is marked acknowledged.
func (e *Entry) IsAcked(i int) bool {
	return i/8 < len(e.Acked) && e.Acked[i/8]&(1<<(i%8)) != 0
}

// ClearAckedFrom forgets the acknowledgements of segment i and after (a
// re-plan numbers them again).
func (e *Entry) ClearAckedFrom(i int) {
	for k := i; k < len(e.Acked)*8; k++ {
		e.Acked[k/8] &^= 1 << (k % 8)
	}
}

// MarkAcked marks segment i acknowledged.
func (e *Entry) MarkAcked(i int) {
	if need := i/8 + 1; len(e.Acked) < need {
		e.Acked = append(e.Acked, make([]byte, need-len(e.Acked))...)
	}
	e.Acked[i/8] |= 1 << (i % 8)
}
