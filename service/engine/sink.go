package engine

import (
	"fmt"
	"io"

	grpccodes "google.golang.org/grpc/codes"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
)

// count records bytes received from the caller. With a ledger record, the
// hash state is kept at every segment boundary, for the record to store
// once the segment's APPEND is acknowledged.
func (u *upload) count(p []byte) {
	u.insp.write(p)
	u.tally(p)
}

// tally counts and hashes bytes (see count) that the inspector has seen.
func (u *upload) tally(p []byte) {
	u.tallied += len(p)
	if u.digest == nil {
		u.received += int64(len(p))
		return
	}
	if !u.keyed || len(u.segPlan) == 0 || u.segPlan[0].Size == 0 {
		u.received += int64(len(p))
		u.digest.Write(p)
		return
	}
	for len(p) > 0 {
		next := u.segPlan.Offset(u.segPlan.Index(u.received) + 1)
		if total := u.spec.TotalBytes; u.received < total {
			// The last segment ends at total_bytes: a resume from there
			// needs the hash state of every byte.
			next = min(next, total)
		}
		k := int(min(int64(len(p)), next-u.received))
		u.digest.Write(p[:k])
		u.received += int64(k)
		p = p[k:]
		if u.received == next {
			u.rec.hashAt(u.received, u.digest)
		}
	}
}

// replanned follows the session's new plan (backend.Spec.Replanned): the
// hash states of the bytes still to come are kept at its boundaries, and
// the record stores it before any of its segments is sent.
func (u *upload) replanned(plan backend.Plan, segments int) {
	u.segPlan = plan
	u.rec.replanned(plan, segments)
}

func (u *upload) short() error {
	return &apierr.Error{Code: grpccodes.InvalidArgument, Resumable: true,
		Msg: fmt.Sprintf("received %d of %d bytes", u.received, u.spec.TotalBytes)}
}

// meteredSession is the Sink of an upload: it counts and hashes the bytes
// on their way into the session, and refuses bytes past total_bytes
// before they reach it.
type meteredSession struct {
	u    *upload
	sess backend.Session
}

func (m *meteredSession) Write(p []byte) (int, error) {
	if m.u.received+int64(len(p)) > m.u.spec.TotalBytes {
		m.u.received += int64(len(p))
		return 0, tooMuch(m.u.spec.TotalBytes)
	}
	// Counted (and hashed) before the session may send a segment: its
	// acknowledgement must find the hash state of its end.
	m.u.count(p)
	return m.sess.Write(p)
}

// Ready waits for a buffer for the next bytes (see backend.Session.Ready).
func (m *meteredSession) Ready() error { return m.sess.Ready() }

// ReadFrom has the session read r into its segment buffers, where the
// bytes are counted and hashed.
func (m *meteredSession) ReadFrom(r io.Reader) (int64, error) {
	return m.sess.ReadFrom(&meteredBody{u: m.u, r: r})
}

// tooMuch is the error of a body that holds more than total_bytes.
func tooMuch(total int64) error {
	return apierr.Invalidf("received more than total_bytes (%d)", total)
}

// meteredBody counts and hashes what the session reads from a body, in
// the segment buffer it was read into.
type meteredBody struct {
	u *upload
	r io.Reader
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.u.count(p[:n])
	return n, err
}
