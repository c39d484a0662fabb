package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"google.golang.org/grpc/codes"
)

// spoolPrefix names the files of the spool directory, so that mediagw
// removes only its own.
const spoolPrefix = "mediagw-spool-"

// spool holds uploads of unknown size on disk until they end: X's INIT
// needs total_bytes. Its files count against one budget (MaxSpoolBytes),
// which also bounds each upload.
type spool struct {
	dir   string
	limit int64

	mu   sync.Mutex
	used int64
}

// newSpool prepares dir, removing the files a stopped mediagw left there.
func newSpool(dir string, limit int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, spoolPrefix+"*"))
	if err != nil {
		return nil, err
	}
	for _, f := range old {
		_ = os.Remove(f)
	}
	return &spool{dir: dir, limit: limit}, nil
}

// reserve takes n more bytes of the budget.
func (sp *spool) reserve(n int64) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.used+n > sp.limit {
		return false
	}
	sp.used += n
	return true
}

func (sp *spool) release(n int64) {
	sp.mu.Lock()
	sp.used -= n
	sp.mu.Unlock()
}

// spooled is one upload's bytes on disk. Close removes the file and gives
// its budget back.
type spooled struct {
	sp       *spool
	f        *os.File
	size     int64 // bytes written
	reserved int64 // budget held
	once     sync.Once
}

func (s *spooled) Read(p []byte) (int, error) { return s.f.Read(p) }

func (s *spooled) Close() error {
	s.once.Do(func() {
		_ = s.f.Close()
		_ = os.Remove(s.f.Name())
		s.sp.release(s.reserved)
	})
	return nil
}

// take writes body to a spool file until it ends, refusing more than
// limit bytes (the category's size limit) and more than the spool's
// budget: both before anything reached X.
func (sp *spool) take(body io.Reader, limit int64) (*spooled, error) {
	f, err := os.CreateTemp(sp.dir, spoolPrefix+"*")
	if err != nil {
		return nil, spoolError(err)
	}
	s := &spooled{sp: sp, f: f}
	w := &spoolWriter{s: s, limit: limit}
	if _, err = io.Copy(w, body); w.err != nil {
		err = w.err
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// spoolWriter reserves budget ahead of the bytes it writes.
type spoolWriter struct {
	s     *spooled
	limit int64
	err   error
}

// reserveStep is how much budget a spool reserves at a time.
const reserveStep = 4 << 20

func (w *spoolWriter) Write(p []byte) (int, error) {
	s := w.s
	need := s.size + int64(len(p))
	if need > w.limit {
		w.err = apierr.Invalidf("the upload of unknown size is larger than its limit of %d bytes", w.limit)
		return 0, w.err
	}
	if need > s.reserved {
		more := (need - s.reserved + reserveStep - 1) / reserveStep * reserveStep
		if !s.sp.reserve(more) {
			w.err = &apierr.Error{Code: codes.ResourceExhausted,
				Msg: fmt.Sprintf("mediagw's spool for uploads of unknown size is full (%d bytes); send total_bytes, or try again later", s.sp.limit)}
			return 0, w.err
		}
		s.reserved += more
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		w.err = spoolError(err)
		return n, w.err
	}
	return n, nil
}

// spoolRetry is the retry delay of an upload the spool's disk had no room
// for.
const spoolRetry = 30 * time.Second

// spoolError is the caller's error of a spool file that could not be
// made or written: a full disk is ResourceExhausted (waiting may help,
// and so does sending total_bytes, which needs no spool), anything else
// Unavailable. Neither names the file: paths stay in mediagw's log.
func spoolError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &apierr.Error{Code: codes.ResourceExhausted, Retry: spoolRetry, Cause: err,
			Msg: "mediagw's spool for uploads of unknown size has no room left on its disk; send total_bytes, or try again later"}
	}
	return &apierr.Error{Code: codes.Unavailable, Retry: spoolRetry, Cause: err,
		Msg: "mediagw cannot spool the upload of unknown size; send total_bytes, or try again later"}
}
