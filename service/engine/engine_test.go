package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memSource is an upload held in memory, delivered as the gRPC transport
// does (stream: Write after Ready) or as the REST one does (the session
// reads it).
type memSource struct {
	start    *mediagwv1.UploadStart
	r        io.Reader
	stream   bool
	mediaLen int64
	end      error

	once    sync.Once
	stopped chan struct{}
}

func newSource(start *mediagwv1.UploadStart, media []byte, stream bool) *memSource {
	return &memSource{start: start, r: bytes.NewReader(media), stream: stream, mediaLen: -1, stopped: make(chan struct{})}
}

func (s *memSource) Transport() string {
	if s.stream {
		return "grpc"
	}
	return "rest"
}
func (s *memSource) MediaLen() int64                        { return s.mediaLen }
func (s *memSource) Start() (*mediagwv1.UploadStart, error) { return s.start, nil }
func (s *memSource) End() error                             { return s.end }
func (s *memSource) Interrupt()                             { s.once.Do(func() { close(s.stopped) }) }

func (s *memSource) Read(p []byte) (int, error) {
	select {
	case <-s.stopped:
		return 0, ErrStopped
	default:
	}
	return s.r.Read(p)
}

func (s *memSource) Deliver(dst Sink) error {
	if !s.stream {
		_, err := dst.ReadFrom(s)
		return err
	}
	buf := make([]byte, 300)
	for {
		if err := dst.Ready(); err != nil {
			return err
		}
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(append([]byte(nil), buf[:n]...)); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// media is n bytes of a PNG: its signature, then a pattern.
func media(n int) []byte {
	b := make([]byte, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	for i := 8; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func pngStart(n int, opts ...func(*mediagwv1.UploadStart)) *mediagwv1.UploadStart {
	st := &mediagwv1.UploadStart{MediaType: "image/png", TotalBytes: int64(n)}
	for _, o := range opts {
		o(st)
	}
	return st
}

func withKey(k string) func(*mediagwv1.UploadStart) {
	return func(st *mediagwv1.UploadStart) { st.IdempotencyKey = k }
}

func withResume(off int64) func(*mediagwv1.UploadStart) {
	return func(st *mediagwv1.UploadStart) { st.ResumeOffset = &off }
}

func keyedEngine(t *testing.T, x *fakeX) *Engine {
	t.Helper()
	l, err := boltledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return newEngine(t, Config{Backend: x, Ledger: l, SpoolDir: t.TempDir()})
}

// TestOnePathBothBodies: an upload delivered either way reaches X byte
// for byte, with one INIT and one FINALIZE, plain and keyed.
func TestOnePathBothBodies(t *testing.T) {
	for _, stream := range []bool{true, false} {
		for _, key := range []string{"", "k1"} {
			x := newFakeX()
			e := keyedEngine(t, x)
			m := media(5000)
			sum := sha256.Sum256(m)
			st := pngStart(len(m), func(s *mediagwv1.UploadStart) { s.Sha256 = hex.EncodeToString(sum[:]) }, withKey(key))
			resp, err := e.Run(context.Background(), backend.Caller{}, newSource(st, m, stream))
			if err != nil {
				t.Fatalf("stream=%v key=%q: %v", stream, key, err)
			}
			if got := x.media[resp.GetMediaId()].bytes(); !bytes.Equal(got, m) {
				t.Fatalf("stream=%v key=%q: X got %d bytes, not the media", stream, key, len(got))
			}
			if inits, _, fins, _ := x.counts(); inits != 1 || fins != 1 {
				t.Fatalf("stream=%v key=%q: %d INIT, %d FINALIZE", stream, key, inits, fins)
			}
		}
	}
}

// TestRefusals: what the engine refuses, with its code and what reached X.
func TestRefusals(t *testing.T) {
	m := media(3000)
	cases := []struct {
		name  string
		start *mediagwv1.UploadStart
		body  []byte
		end   error
		code  codes.Code
		want  string
		inits int
	}{
		{"more than total_bytes", pngStart(2000), m, nil, codes.InvalidArgument, "received more than total_bytes (2000)", 1},
		{"short", pngStart(4000), m, nil, codes.InvalidArgument, "received 3000 of 4000 bytes", 1},
		{"not a png", pngStart(3000), bytes.Repeat([]byte("x"), 3000), nil, codes.InvalidArgument, "image/png", 0},
		{"sha256 mismatch", pngStart(3000, func(s *mediagwv1.UploadStart) { s.Sha256 = strings.Repeat("ab", 32) }), m, nil, codes.InvalidArgument, "sha256 mismatch", 1},
		{"bad sha256", pngStart(3000, func(s *mediagwv1.UploadStart) { s.Sha256 = "zz" }), m, nil, codes.InvalidArgument, "not a hex SHA-256", 0},
		{"trailing part", pngStart(3000), m, errors.New("form part \"sha256\" follows the media part"), codes.Unknown, "follows the media part", 1},
		{"spooled, trailing part", pngStart(0), m, errors.New("form part \"sha256\" follows the media part"), codes.Unknown, "follows the media part", 0},
		{"key dot-dot", pngStart(3000, withKey("..")), m, nil, codes.InvalidArgument, "is not a key", 0},
		{"resume without key", pngStart(3000, withResume(0)), m, nil, codes.InvalidArgument, "required with resume_offset", 0},
		{"resume unknown key", pngStart(3000, withKey("nope"), withResume(0)), m, nil, codes.NotFound, "no upload with idempotency key", 0},
		{"negative resume offset", pngStart(3000, withKey("k"), withResume(-1)), m, nil, codes.InvalidArgument, "resume_offset -1 is not a byte offset", 0},
	}
	for _, c := range cases {
		for _, stream := range []bool{true, false} {
			x := newFakeX()
			e := keyedEngine(t, x)
			src := newSource(c.start, c.body, stream)
			src.end = c.end
			_, err := e.Run(context.Background(), backend.Caller{}, src)
			st := status.Convert(err)
			if err == nil || !strings.Contains(st.Message(), c.want) || (c.code != codes.Unknown && st.Code() != c.code) {
				t.Errorf("%s (stream=%v): %v, want %v %q", c.name, stream, err, c.code, c.want)
			}
			if inits, _, fins, _ := x.counts(); inits != c.inits || fins != 0 {
				t.Errorf("%s (stream=%v): %d INIT, %d FINALIZE; want %d, 0", c.name, stream, inits, fins, c.inits)
			}
		}
	}
}

// TestReplayAndResume: a keyed upload cut short is resumed from its
// committed bytes without a new INIT; the finished key is then answered
// from the ledger with no call to X.
func TestReplayAndResume(t *testing.T) {
	x := newFakeX()
	e := keyedEngine(t, x)
	m := media(5000)
	ctx := context.Background()
	_, err := e.Run(ctx, backend.Caller{}, newSource(pngStart(len(m), withKey("r")), m[:2500], true))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("cut short: %v, want Unavailable (interrupted)", err)
	}
	state, err := e.GetUpload(ctx, backend.Caller{}, "r")
	if err != nil || state.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED || state.GetCommittedBytes() != 2048 {
		t.Fatalf("state %v %v: want INTERRUPTED at 2048 (two 1 KiB segments)", state, err)
	}
	off := state.GetCommittedBytes()
	resp, err := e.Run(ctx, backend.Caller{}, newSource(pngStart(len(m), withKey("r"), withResume(off)), m[off:], false))
	if err != nil {
		t.Fatal(err)
	}
	if got := x.media[resp.GetMediaId()].bytes(); !bytes.Equal(got, m) {
		t.Fatal("the resumed upload is not the media")
	}
	again, err := e.Run(ctx, backend.Caller{}, newSource(pngStart(len(m), withKey("r")), nil, true))
	if err != nil || again.GetMediaId() != resp.GetMediaId() {
		t.Fatalf("replay: %v %v", again, err)
	}
	if inits, resumes, fins, _ := x.counts(); inits != 1 || resumes != 1 || fins != 1 {
		t.Fatalf("%d INIT, %d resumes, %d FINALIZE; want 1, 1, 1", inits, resumes, fins)
	}
}

// TestKeysAreTheCredentials: the same key sent with another X user token
// is another upload: the second user is never answered the first one's
// media id, and cannot resume or see the first one's upload.
func TestKeysAreTheCredentials(t *testing.T) {
	x := newFakeX()
	e := keyedEngine(t, x)
	ctx := context.Background()
	a := backend.Caller{ID: "svc", Auth: backend.Auth{Token: "user-a"}}
	b := backend.Caller{ID: "svc", Auth: backend.Auth{Token: "user-b"}}
	m := media(3000)
	ra, err := e.Run(ctx, a, newSource(pngStart(len(m), withKey("same")), m, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetUpload(ctx, b, "same"); status.Code(err) != codes.NotFound {
		t.Fatalf("user b's GetUpload of user a's key: %v, want NotFound", err)
	}
	if _, err := e.Run(ctx, b, newSource(pngStart(len(m), withKey("same"), withResume(0)), m, true)); status.Code(err) != codes.NotFound {
		t.Fatalf("user b resuming user a's key: %v, want NotFound", err)
	}
	rb, err := e.Run(ctx, b, newSource(pngStart(len(m), withKey("same")), m, true))
	if err != nil || rb.GetMediaId() == ra.GetMediaId() {
		t.Fatalf("user b's upload with the same key: %v %v, user a's media %s", rb, err, ra.GetMediaId())
	}
	if inits, _, _, _ := x.counts(); inits != 2 {
		t.Fatalf("%d INITs, want 2 (one per user)", inits)
	}
}

// TestFailedResumesLeakNothing: resumes that fail after the upload's
// record was opened (X forgot the session) stop its writer; goleak checks
// that no goroutine is left.
func TestFailedResumesLeakNothing(t *testing.T) {
	x := newFakeX()
	e := keyedEngine(t, x)
	ctx := context.Background()
	m := media(3000)
	for i := range 20 {
		key := fmt.Sprintf("gone-%d", i)
		if _, err := e.Run(ctx, backend.Caller{}, newSource(pngStart(len(m), withKey(key)), m[:1500], true)); status.Code(err) != codes.Unavailable {
			t.Fatalf("cut short: %v", err)
		}
	}
	x.mu.Lock()
	x.media = map[string]*fakeSession{} // X forgot every session
	x.mu.Unlock()
	for i := range 20 {
		key := fmt.Sprintf("gone-%d", i)
		if _, err := e.Run(ctx, backend.Caller{}, newSource(pngStart(len(m), withKey(key), withResume(1024)), m[1024:], true)); err == nil {
			t.Fatal("a resume of a session X forgot succeeded")
		}
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

// TestInterruptUploads: past the drain timeout a blocked upload stops with
// Unavailable; a keyed one is recorded INTERRUPTED, resumable.
func TestInterruptUploads(t *testing.T) {
	x := newFakeX()
	e := keyedEngine(t, x)
	pr, pw := io.Pipe()
	defer pw.Close()
	m := media(3000)
	go func() { _, _ = pw.Write(m[:1500]) }()
	src := &memSource{start: pngStart(len(m), withKey("drain")), r: pr, stream: true, mediaLen: -1, stopped: make(chan struct{})}
	// A blocked read ends when the upload is interrupted.
	src.r = readerFunc(func(p []byte) (int, error) {
		type res struct {
			n   int
			err error
		}
		c := make(chan res, 1)
		go func() { n, err := pr.Read(p); c <- res{n, err} }()
		select {
		case r := <-c:
			return r.n, r.err
		case <-src.stopped:
			_ = pr.CloseWithError(ErrStopped)
			return 0, ErrStopped
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), backend.Caller{}, src)
		done <- err
	}()
	// Wait until the upload has received its first segment (the fake
	// acknowledges it), then interrupt.
	deadline := time.After(10 * time.Second)
	for {
		if st, err := e.GetUpload(context.Background(), backend.Caller{}, "drain"); err == nil && st.GetCommittedBytes() >= 1024 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the upload never committed a segment")
		case <-time.After(5 * time.Millisecond):
		}
	}
	e.InterruptUploads()
	select {
	case err := <-done:
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
			t.Fatalf("interrupted upload: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upload did not stop")
	}
	st, err := e.GetUpload(context.Background(), backend.Caller{}, "drain")
	if err != nil || st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED {
		t.Fatalf("after the interruption: %v %v", st, err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
