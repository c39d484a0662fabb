package engine

import (
	"context"
	"encoding"
	"hash"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
)

// ledgerWriteTimeout bounds one ledger write that must happen although the
// upload's context ended (recording an interruption).
const ledgerWriteTimeout = 10 * time.Second

// journal is what an upload records as it goes: a record of its ledger
// entry when it has an idempotency key, noRecord when it has none.
type journal interface {
	// hashAt keeps the digest's state at boundary at, for when the bytes
	// up to it are committed.
	hashAt(at int64, d hash.Hash)
	// update changes the entry with fn and waits until it is stored.
	update(ctx context.Context, fn func(e *ledger.Entry)) error
	// finalizing records that every byte is at X and FINALIZE is under way.
	finalizing(ctx context.Context) error
	// fail records the upload FAILED with err and returns err.
	fail(ctx context.Context, err error) error
	// replanned records the session's new plan (backend.Spec.Replanned)
	// and waits until it is stored.
	replanned(plan backend.Plan, segments int)
	// snapshot is the entry as the caller sees it now.
	snapshot() *mediagwv1.UploadState
	// close stops what the journal runs; safe to call more than once.
	close()
}

// noRecord is the journal of an upload without an idempotency key: it
// keeps nothing.
type noRecord struct{}

func (noRecord) hashAt(int64, hash.Hash)                           {}
func (noRecord) update(context.Context, func(*ledger.Entry)) error { return nil }
func (noRecord) finalizing(context.Context) error                  { return nil }
func (noRecord) fail(_ context.Context, err error) error           { return err }
func (noRecord) replanned(backend.Plan, int)                       {}
func (noRecord) snapshot() *mediagwv1.UploadState                  { return nil }
func (noRecord) close()                                            {}

var (
	_ journal = noRecord{}
	_ journal = (*record)(nil)
)

// record is the ledger entry of one keyed upload while a stream drives it.
// Acknowledged segments are recorded off the APPEND path: segmentDone only
// marks the entry and wakes the writer, which stores the latest state
// (several acknowledgements in one write when they come close together).
// A segment counts as committed only once a write holding it is stored;
// update and flush wait for that.
type record struct {
	lease ledger.Lease

	mu      sync.Mutex
	e       ledger.Entry
	hashes  map[int64][]byte // hash states at boundaries not yet committed
	gen     uint64           // changes made
	stored  uint64           // changes stored
	err     error            // the last write's error
	changed chan struct{}    // closed and replaced when stored changes

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func newRecord(lease ledger.Lease, e *ledger.Entry) *record {
	r := &record{lease: lease, e: *e, hashes: map[int64][]byte{}, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.wg.Add(1)
	go r.writer()
	return r
}

// writer stores the entry each time it changed.
func (r *record) writer() {
	defer r.wg.Done()
	for {
		select {
		case <-r.wake:
		case <-r.done:
			return
		}
		r.mu.Lock()
		gen, e := r.gen, r.copyLocked()
		r.mu.Unlock()
		if gen == r.storedGen() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), ledgerWriteTimeout)
		err := r.lease.Put(ctx, e)
		cancel()
		r.mu.Lock()
		r.err = err
		if err == nil && gen > r.stored {
			r.stored = gen
		}
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

func (r *record) storedGen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stored
}

func (r *record) copyLocked() *ledger.Entry {
	e := r.e
	e.Acked = append([]byte(nil), r.e.Acked...)
	e.Updated = time.Now()
	return &e
}

func (r *record) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// segmentDone marks segment i acknowledged (backend.Spec.SegmentDone) and moves
// Committed over the run of acknowledged segments from byte 0: to its end,
// or, when the caller declared a sha256, to the last boundary in it whose
// hash state is known. Every boundary has one unless the upload was cut
// again: the bytes that had already passed by then were hashed at the old
// plan's boundaries.
func (r *record) segmentDone(i int, _ int64) {
	r.mu.Lock()
	e := &r.e
	e.MarkAcked(i)
	plan, total := backendPlan(e.Plan), e.Start.TotalBytes
	if len(plan) == 0 {
		plan = backend.Plan{{From: 0, Size: e.SegmentSize}}
	}
	for at := e.Committed; at < total; {
		idx := plan.Index(at)
		if !e.IsAcked(idx) {
			break
		}
		at = min(plan.Offset(idx+1), total)
		st, ok := r.hashes[at]
		if ok {
			e.HashState = st
		}
		if ok || e.Start.SHA256 == "" || at == total {
			e.Committed = at
		}
	}
	for at := range r.hashes {
		if at <= e.Committed {
			delete(r.hashes, at)
		}
	}
	r.gen++
	r.mu.Unlock()
	r.kick()
}

// replanned records the session's new plan: the acknowledgements of the
// segments it numbers again no longer count. It waits until the plan is
// stored. A store that fails is not an error here: the plan is in the
// record's entry from now on, so every later store that holds a new
// segment's acknowledgement holds the plan too, and a ledger that keeps
// failing fails the upload's own later writes (finalizing, settle).
func (r *record) replanned(plan backend.Plan, segments int) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerWriteTimeout)
	defer cancel()
	_ = r.update(ctx, func(e *ledger.Entry) {
		e.Plan, e.Segments = ledgerPlan(plan), segments
		e.ClearAckedFrom(plan[len(plan)-1].From)
	})
}

// backendPlan and ledgerPlan convert a plan between the ledger's form and
// the backend's; nil stays nil.
func backendPlan(runs []ledger.Run) backend.Plan {
	if len(runs) == 0 {
		return nil
	}
	p := make(backend.Plan, len(runs))
	for i, r := range runs {
		p[i] = backend.Run{From: r.From, Size: r.Size}
	}
	return p
}

func ledgerPlan(p backend.Plan) []ledger.Run {
	runs := make([]ledger.Run, len(p))
	for i, r := range p {
		runs[i] = ledger.Run{From: r.From, Size: r.Size}
	}
	return runs
}

// hashAt keeps the digest's state at boundary at, for when the bytes up to
// it are committed.
func (r *record) hashAt(at int64, d hash.Hash) {
	m, ok := d.(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return
	}
	r.mu.Lock()
	if at > r.e.Committed {
		r.hashes[at] = st
	}
	r.mu.Unlock()
}

// update changes the entry with fn and waits until the change is stored.
// It runs on after ctx ended (for the interruption's record), bounded by
// ledgerWriteTimeout.
func (r *record) update(ctx context.Context, fn func(e *ledger.Entry)) error {
	r.mu.Lock()
	fn(&r.e)
	r.gen++
	r.mu.Unlock()
	return r.flush(ctx)
}

// flush waits until every change so far is stored.
func (r *record) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerWriteTimeout)
	defer cancel()
	r.mu.Lock()
	want := r.gen
	r.mu.Unlock()
	for {
		r.kick()
		r.mu.Lock()
		stored, err, changed := r.stored, r.err, r.changed
		r.mu.Unlock()
		if stored >= want {
			return nil
		}
		select {
		case <-changed:
			if err := r.lastErr(); err != nil {
				return err
			}
		case <-ctx.Done():
			if err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

func (r *record) lastErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored >= r.gen {
		return nil
	}
	return r.err
}

// finalizing records that every byte is at X and FINALIZE is under way.
func (r *record) finalizing(ctx context.Context) error {
	if err := r.update(ctx, func(e *ledger.Entry) { e.Phase = ledger.PhaseFinalizing }); err != nil {
		return ledgerError(err)
	}
	return nil
}

// fail records the upload FAILED with err and returns err.
func (r *record) fail(ctx context.Context, err error) error {
	st := status.Convert(apierr.ToStatus(err))
	if werr := r.update(ctx, func(e *ledger.Entry) {
		e.Phase, e.Error = ledger.PhaseFailed, &ledger.Error{Code: apierr.CodeName(st.Code()), Message: st.Message()}
	}); werr != nil {
		return ledgerError(werr)
	}
	return err
}

// snapshot is the entry as the caller sees it now.
func (r *record) snapshot() *mediagwv1.UploadState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return stateOf(&r.e)
}

// close stops the writer.
func (r *record) close() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
}

// stateOf is an entry as GetUpload reports it. An upload that was
// receiving or finalizing with no live holder (its stream or process is
// gone) is INTERRUPTED.
func stateOf(e *ledger.Entry) *mediagwv1.UploadState {
	st := &mediagwv1.UploadState{
		IdempotencyKey: e.Key,
		CommittedBytes: e.Committed,
		TotalBytes:     e.Start.TotalBytes,
		MediaId:        e.MediaID,
		MediaType:      e.Start.MediaType,
	}
	st.MediaCategory, _ = ParseCategory(e.Start.Category)
	if !e.Expires.IsZero() {
		st.ExpiresAt = timestamppb.New(e.Expires)
	}
	if !e.Updated.IsZero() {
		st.UpdatedAt = timestamppb.New(e.Updated)
	}
	switch e.Phase {
	case ledger.PhaseReceiving, ledger.PhaseFinalizing:
		st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_RECEIVING
		if e.Phase == ledger.PhaseFinalizing {
			st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_FINALIZING
		}
		if !e.Live {
			st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED
		}
	case ledger.PhaseInterrupted:
		st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED
	case ledger.PhaseCompleted:
		st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED
		resp := &mediagwv1.UploadResponse{}
		if protojson.Unmarshal(e.Response, resp) == nil {
			st.Response = resp
		}
	case ledger.PhaseFailed:
		st.Phase = mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED
	}
	if e.Error != nil {
		st.Error = &mediagwv1.UploadError{Code: e.Error.Code, Message: e.Error.Message}
	}
	if v := e.Verdict; v != nil && len(v.Inspection) > 0 {
		in := &mediagwv1.MediaInspection{}
		if protojson.Unmarshal(v.Inspection, in) == nil {
			st.Inspection = in
		}
	}
	return st
}
