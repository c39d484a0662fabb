package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/relay"
)

// fakeX is a Backend that keeps what it is sent in memory: the fake the
// engine's unit tests run against. Its sessions cut the bytes into
// segments of segSize, acknowledge each one (Spec.SegmentDone) and, at
// Finish, hand over the bytes received.
type fakeX struct {
	segSize int64

	mu       sync.Mutex
	nextID   int
	inits    int
	resumes  int
	finishes int
	aborts   int
	media    map[string]*fakeSession // by media id
	// beginErr, when set, is what INIT answers.
	beginErr error
	// appendErr, when set, fails the APPEND of the given segment.
	appendErr map[int]error
	// hold, when set, blocks every Write until it is closed.
	hold chan struct{}
}

func newFakeX() *fakeX {
	return &fakeX{segSize: 1 << 10, media: map[string]*fakeSession{}, appendErr: map[int]error{}}
}

func (x *fakeX) Begin(ctx context.Context, _ backend.Auth, spec backend.Spec) (backend.Session, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.inits++
	if x.beginErr != nil {
		return nil, x.beginErr
	}
	x.nextID++
	s := &fakeSession{x: x, ctx: ctx, id: strconv.Itoa(1000 + x.nextID), spec: spec}
	x.media[s.id] = s
	return s, nil
}

func (x *fakeX) Resume(ctx context.Context, _ backend.Auth, spec backend.Spec, at backend.ResumeAt) (backend.Session, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.resumes++
	s := x.media[at.MediaID]
	if s == nil {
		return nil, fmt.Errorf("fake X: no session %s", at.MediaID)
	}
	s.mu.Lock()
	s.ctx, s.spec, s.off, s.stopped = ctx, spec, at.Offset, nil
	s.buf.Truncate(int(at.Offset))
	s.mu.Unlock()
	return s, nil
}

func (x *fakeX) Status(_ context.Context, _ backend.Auth, id string) (backend.Media, error) {
	return backend.Media{ID: id}, nil
}

func (x *fakeX) counts() (inits, resumes, finishes, aborts int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.inits, x.resumes, x.finishes, x.aborts
}

// fakeSession is one upload at fakeX; its bytes are kept whole (tests
// upload kilobytes).
type fakeSession struct {
	x    *fakeX
	id   string
	spec backend.Spec

	mu      sync.Mutex
	ctx     context.Context
	buf     bytes.Buffer
	off     int64 // first byte of this life of the upload
	acked   int   // segments acknowledged
	stopped error
}

func (s *fakeSession) MediaID() string    { return s.id }
func (s *fakeSession) MediaKey() string   { return "7_" + s.id }
func (s *fakeSession) Expires() time.Time { return time.Now().Add(time.Hour) }
func (s *fakeSession) Ready() error       { return s.err() }

func (s *fakeSession) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped != nil {
		return s.stopped
	}
	return context.Cause(s.ctx)
}

func (s *fakeSession) Write(p []byte) (int, error) {
	if h := s.x.hold; h != nil {
		select {
		case <-h:
		case <-s.ctx.Done():
			return 0, context.Cause(s.ctx)
		}
	}
	if err := s.err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(s.buf.Len())+int64(len(p)) > s.spec.TotalBytes {
		return 0, errors.New("fake X: more bytes than total_bytes")
	}
	s.buf.Write(p)
	// Every full segment is acknowledged at once.
	for size := s.x.segSize; int64(s.acked+1)*size <= int64(s.buf.Len()); s.acked++ {
		if err := s.x.appendErr[s.acked]; err != nil {
			s.stopped = err
			return len(p), err
		}
		if s.spec.SegmentDone != nil {
			s.spec.SegmentDone(s.acked, size)
		}
	}
	return len(p), nil
}

func (s *fakeSession) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 700) // not a divisor of the segment size
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := s.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (s *fakeSession) Finish(context.Context) (backend.Media, error) {
	if err := s.err(); err != nil {
		return backend.Media{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(s.buf.Len()) != s.spec.TotalBytes {
		return backend.Media{}, fmt.Errorf("fake X: FINALIZE with %d of %d bytes", s.buf.Len(), s.spec.TotalBytes)
	}
	if rest := int64(s.buf.Len()) % s.x.segSize; rest != 0 && s.spec.SegmentDone != nil {
		s.spec.SegmentDone(s.acked, rest)
	}
	s.x.mu.Lock()
	s.x.finishes++
	s.x.mu.Unlock()
	return backend.Media{ID: s.id, Key: s.MediaKey(), Size: int64(s.buf.Len()), ExpiresAfterSecs: 3600}, nil
}

func (s *fakeSession) Abort(err error) {
	s.mu.Lock()
	s.stopped = err
	s.mu.Unlock()
	s.x.mu.Lock()
	s.x.aborts++
	s.x.mu.Unlock()
}

func (s *fakeSession) Interrupt(time.Duration) {
	s.mu.Lock()
	s.stopped = errors.New("fake X: interrupted")
	// The segment being filled is dropped.
	s.buf.Truncate(s.acked * int(s.x.segSize))
	s.mu.Unlock()
}

func (s *fakeSession) Info() backend.SessionInfo {
	n := int((s.spec.TotalBytes + s.x.segSize - 1) / s.x.segSize)
	return backend.SessionInfo{SegmentSize: s.x.segSize, Segments: n, Parallelism: 1}
}

func (s *fakeSession) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.buf.Bytes()...)
}

// newEngine is an Engine on cfg's backend, with the status relay and an
// open policy filled in when cfg has none.
func newEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	if cfg.Relay == nil {
		h, err := relay.New(relay.Config{Backend: cfg.Backend})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		cfg.Relay = h
	}
	if cfg.Policies == nil {
		cfg.Policies = policy.New(!cfg.Authenticated)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
