// Package backend declares what mediagw needs from X: the [Backend] that
// opens upload sessions and asks for processing status, the [Session] of
// one upload, and the values they exchange. The upstream adapter
// satisfies it through a small bridge in cmd/mediagw; nothing under
// service/ imports the adapter.
package backend

import (
	"context"
	"io"
	"time"
)

// Backend is what the upload engine and the status relay need from X.
type Backend interface {
	// Begin sends INIT for spec and returns the session that takes the
	// bytes. ctx bounds the whole upload: cancelling it stops every call.
	Begin(ctx context.Context, auth Auth, spec Spec) (Session, error)
	// Resume continues an upload whose INIT happened before (in another
	// stream or process) at the point at describes, without a new INIT:
	// the bytes given to the session start at at.Offset, and segments X
	// acknowledged are not sent again.
	Resume(ctx context.Context, auth Auth, spec Spec, at ResumeAt) (Session, error)
	// Status asks X for the processing state of mediaID.
	Status(ctx context.Context, auth Auth, mediaID string) (Media, error)
}

// Session is one upload in progress at X.
type Session interface {
	// MediaID is X's id for the upload, known once INIT succeeded.
	MediaID() string
	// MediaKey is X's media key from INIT; may be empty.
	MediaKey() string
	// Expires is when X forgets the upload session; zero when unknown.
	Expires() time.Time
	// Write hands the next bytes to the upload. It blocks while the
	// upload's segments in flight are at their limit and returns the
	// upload's error once it failed.
	Write(p []byte) (int, error)
	// Ready blocks until the upload has a segment buffer for its next
	// bytes (or its segment is on disk), so that a transport receives a
	// message only when there is somewhere to put it.
	Ready() error
	// ReadFrom reads r until EOF straight into the upload's segment
	// buffers, blocking as Write does. A reader that ends early is not an
	// error here; Finish reports the shortfall.
	ReadFrom(r io.Reader) (int64, error)
	// Finish waits for every segment and sends FINALIZE.
	Finish(ctx context.Context) (Media, error)
	// Abort stops the upload and releases its buffers.
	Abort(err error)
	// Interrupt stops the upload so that it can be resumed: no more bytes
	// are taken, the segment being filled is dropped, and the APPENDs in
	// flight may finish for up to wait before the rest are cancelled.
	Interrupt(wait time.Duration)
	// Info describes how the upload is cut and how it went so far.
	Info() SessionInfo
}

// SessionInfo describes an upload at X for logs and traces.
type SessionInfo struct {
	SegmentSize int64 // bytes per APPEND of the plan's first run (the last segment may be shorter)
	Segments    int   // APPENDs the upload needs
	Parallelism int   // APPENDs in flight at most
	Retries     int64 // attempts of X calls retried so far
	// Plan is how the bytes are cut now: one run of SegmentSize unless X
	// refused segments as too large (see Spec.Replanned).
	Plan Plan
}

// Plan is how an upload's bytes are cut into segments: runs of segments
// of one size each, the first from index 0. The last segment may be
// shorter than its run's size.
type Plan []Run

// Run is segments of Size bytes from index From on, up to the next run.
type Run struct {
	From int
	Size int64
}

// Offset returns where segment i starts.
func (p Plan) Offset(i int) int64 {
	var off int64
	r := p[0]
	for _, n := range p[1:] {
		if n.From > i {
			break
		}
		off += int64(n.From-r.From) * r.Size
		r = n
	}
	return off + int64(i-r.From)*r.Size
}

// Index returns the segment holding byte off.
func (p Plan) Index(off int64) int {
	i := 0
	for _, r := range p {
		start := p.Offset(r.From)
		if off < start {
			break
		}
		i = r.From + int((off-start)/r.Size)
	}
	return i
}

// Caller is who makes a call, as its transport established it, and the X
// credential the call runs with.
type Caller struct {
	// ID is the authenticated caller (the identity authentication
	// established); empty when mediagw runs without authentication.
	ID string
	// Auth is the X credential the call uses: the caller's own token, or
	// the account the callers policy resolved for an upload.
	Auth Auth
}

// Auth is the X user credential a call uses: the caller's own Token, or
// the configured account named Account, or (both empty) the backend's
// default credentials.
type Auth struct {
	// Token is an OAuth 2.0 user access token with the media.write scope.
	Token string
	// Account names a configured X account; empty with Token and for the
	// default credentials.
	Account string
}

// Spec is a validated upload as the backend takes it: X's wire names.
type Spec struct {
	MediaType        string
	Category         string // X's media_category, empty when none applies
	TotalBytes       int64
	AdditionalOwners []string
	Shared           bool
	// SegmentDone, when set, is called each time X acknowledged a segment
	// (possibly from several goroutines, in any order).
	SegmentDone func(index int, bytes int64)
	// Replanned, when set, is called when X refused segments as too large
	// and the rest of the upload was cut smaller: plan is the new plan
	// (segments from its last run on are numbered again; acknowledgements
	// of those indexes before it no longer count) and segments how many it
	// cuts. It runs on the goroutine writing to the session, after every
	// APPEND in flight ended and before any segment of the new plan is
	// sent.
	Replanned func(plan Plan, segments int)
}

// ResumeAt is where a resumed upload goes on.
type ResumeAt struct {
	MediaID     string
	MediaKey    string
	Expires     time.Time
	SegmentSize int64
	Segments    int
	// Plan, when set, is the plan after a re-plan (Spec.Replanned); it
	// then replaces SegmentSize.
	Plan Plan
	// Acked reports the segments X acknowledged before.
	Acked func(index int) bool
	// Offset is the first byte the session is given: a segment boundary.
	Offset int64
}

// Media is X's answer about one media id.
type Media struct {
	ID               string
	Key              string
	Size             int64
	ExpiresAfterSecs int64
	// Processing is nil when X does not process the media: it is ready.
	Processing *Processing
}

// Processing is X's processing_info.
type Processing struct {
	// State is X's state as sent (pending, in_progress, succeeded, failed,
	// or a state X added later, which counts as in progress).
	State           string
	ProgressPercent int
	CheckAfterSecs  int
	Error           *ProcessingError
}

// ProcessingError is X's processing_info.error.
type ProcessingError struct {
	Code    int
	Name    string
	Message string
}
