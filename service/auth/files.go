package auth

import (
	"os"
	"sync"
	"time"
)

// fileWatch tells when the files of a loaded configuration (TLS
// certificates, a JWKS) changed, looking at them at most once a second:
// a Kubernetes secret update swaps them behind a symlink, which os.Stat
// follows. TLSFiles and JWTVerifier reload through it.
type fileWatch struct {
	paths []string

	mu      sync.Mutex
	checked time.Time
	stamps  []fileStamp
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func newFileWatch(paths ...string) *fileWatch {
	return &fileWatch{paths: paths}
}

// stamp is the files' state now; take it before reading them, and give
// it to loaded once what was read is in use.
func (w *fileWatch) stamp() []fileStamp {
	out := make([]fileStamp, len(w.paths))
	for i, p := range w.paths {
		if fi, err := os.Stat(p); err == nil {
			out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
		}
	}
	return out
}

// loaded records the state of the files in use.
func (w *fileWatch) loaded(stamps []fileStamp) {
	w.mu.Lock()
	w.stamps, w.checked = stamps, time.Now()
	w.mu.Unlock()
}

// changed reports whether a file changed since it was loaded, looking no
// more than once a second. A change is reported once, whatever the
// outcome of the reload it causes: the files are looked at again only
// after their next change.
func (w *fileWatch) changed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.checked) < time.Second {
		return false
	}
	w.checked = time.Now()
	now := w.stamp()
	for i := range now {
		if i >= len(w.stamps) || now[i] != w.stamps[i] {
			w.stamps = now
			return true
		}
	}
	return false
}
