package xfake

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// lockedRand is a math/rand/v2 source safe for concurrent use, so that a
// seeded server is deterministic for a given order of requests.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64, stream uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, stream))}
}

func (l *lockedRand) int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

// faultPlan is a fault chosen for one request: its kind, and whether it hits
// after the request was applied (the work is done, the answer is lost).
type faultPlan struct {
	kind  FaultKind
	after bool
}

// decideFault draws, with probability FaultRate, a fault for one request.
func (s *Server) decideFault() *faultPlan {
	if s.opts.FaultRate <= 0 {
		return nil
	}
	fr := s.faultRand
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.r.Float64() >= s.opts.FaultRate {
		return nil
	}
	kinds := s.opts.FaultKinds
	return &faultPlan{kind: kinds[fr.r.IntN(len(kinds))], after: fr.r.IntN(2) == 1}
}

// inject carries out a fault on the request: an error answer in the
// dialect's shape, a TCP reset, or a stall followed by a dropped connection.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, kind FaultKind, v11 bool) {
	s.countFault(kind)
	s.opts.Logger.Debug("xfake fault", "kind", string(kind), "path", r.URL.Path)
	switch kind {
	case Fault503:
		if v11 {
			codeError(http.StatusServiceUnavailable, 130, "Over capacity").write(w)
			return
		}
		problemResponse(http.StatusServiceUnavailable).write(w)
	case Fault500:
		if v11 {
			codeError(http.StatusInternalServerError, 131, "Internal error").write(w)
			return
		}
		internalError500V2().write(w)
	case FaultReset:
		drop(w, true)
	case FaultStall:
		t := time.NewTimer(s.opts.StallFor)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closed:
		}
		drop(w, false)
	}
}

// drop closes the request's connection without an answer; with reset it
// sets SO_LINGER to 0 first so the peer sees a TCP RST.
func drop(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: net/http resets the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if reset {
		if l, ok := conn.(interface{ SetLinger(int) error }); ok {
			_ = l.SetLinger(0)
		}
	}
	_ = conn.Close()
}

var _ interface{ SetLinger(int) error } = (*net.TCPConn)(nil)
