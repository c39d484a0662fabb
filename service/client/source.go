package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
)

// Source is the media an Upload reads: File, ReaderAt or Reader.
type Source struct {
	path string
	ra   io.ReaderAt
	r    io.Reader
	size int64 // -1: unknown
}

// File uploads the file at path: it is read twice (once to hash it for
// the declared SHA-256 and the derived key, then to send it) and any
// offset can be resumed.
func File(path string) Source { return Source{path: path, size: -1} }

// ReaderAt uploads size bytes of r; like File, any offset can be resumed.
func ReaderAt(r io.ReaderAt, size int64) Source { return Source{ra: r, size: size} }

// Reader uploads what r yields, size bytes (size < 0: unknown, mediagw
// then spools the whole body before INIT). A plain io.Reader cannot be
// read twice: its SHA-256 is computed as it is sent (and reported, not
// declared), no key is derived for it, and an attempt is retried only
// while no byte was read from r. Past that, a broken upload ends with an
// *Error of Reason NOT_RESUMABLE; with an IdempotencyKey it carries the
// committed bytes, and an Upload of the rest with ResumeOffset continues
// it. An r that is also an io.Seeker (and has a known size) is read from
// offset 0 of the seeker, hashed in a first pass and resumed like a
// ReaderAt. The media type of a Reader is not detected: set
// UploadOptions.MediaType.
func Reader(r io.Reader, size int64) Source {
	if size < 0 {
		size = -1
	}
	return Source{r: r, size: size}
}

// opened is a Source ready for attempts.
type opened struct {
	ra      io.ReaderAt // resumable sources
	seeker  io.ReadSeeker
	r       io.Reader // a plain reader
	size    int64
	closer  io.Closer
	head    []byte    // first bytes, for type detection
	hasher  hash.Hash // a plain reader's running hash
	read    int64     // bytes read from a plain reader
	readErr error     // the source's own read error
}

func (s Source) open() (*opened, error) {
	o := &opened{size: s.size}
	switch {
	case s.path != "":
		f, err := os.Open(s.path)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%s is not a regular file", s.path)
		}
		o.ra, o.size, o.closer = f, fi.Size(), f
	case s.ra != nil:
		if s.size < 0 {
			return nil, errors.New("ReaderAt needs the size")
		}
		o.ra = s.ra
	case s.r != nil:
		if rs, ok := s.r.(io.ReadSeeker); ok && s.size >= 0 {
			o.seeker = rs
		} else {
			o.r, o.hasher = s.r, sha256.New()
		}
	default:
		return nil, errors.New("no source given (use File, ReaderAt or Reader)")
	}
	if o.size == 0 {
		o.close()
		return nil, errors.New("the media is empty")
	}
	if o.ra != nil {
		head := make([]byte, 512)
		n, err := o.ra.ReadAt(head, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			o.close()
			return nil, err
		}
		o.head = head[:n]
	}
	return o, nil
}

func (o *opened) close() {
	if o.closer != nil {
		_ = o.closer.Close()
	}
}

// resumable says whether the source can be read again from any offset.
func (o *opened) resumable() bool { return o.ra != nil || o.seeker != nil }

// hashAll computes the SHA-256 of a resumable source.
func (o *opened) hashAll() (string, error) {
	h := sha256.New()
	var r io.Reader
	if o.ra != nil {
		r = io.NewSectionReader(o.ra, 0, o.size)
	} else {
		if _, err := o.seeker.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		r = o.seeker
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if n != o.size {
		return "", fmt.Errorf("the source holds %d bytes, not %d", n, o.size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// from returns the reader of an attempt starting at offset, and false
// when the source cannot start there.
func (o *opened) from(offset int64) (*errKeeper, bool) {
	var r io.Reader
	switch {
	case o.ra != nil:
		r = io.NewSectionReader(o.ra, offset, o.size-offset)
	case o.seeker != nil:
		if _, err := o.seeker.Seek(offset, io.SeekStart); err != nil {
			o.readErr = err
			return nil, false
		}
		r = io.LimitReader(o.seeker, o.size-offset)
	default:
		if offset != o.read {
			return nil, false
		}
		r = o.r
		if o.size >= 0 {
			r = io.LimitReader(o.r, o.size-offset)
		}
		r = io.TeeReader(r, hashCounter{o})
	}
	return &errKeeper{r: r, o: o}, true
}

// hashCounter hashes (unless hashing is off) and counts a plain
// reader's bytes.
type hashCounter struct{ o *opened }

func (h hashCounter) Write(p []byte) (int, error) {
	if h.o.hasher != nil {
		h.o.hasher.Write(p)
	}
	h.o.read += int64(len(p))
	return len(p), nil
}

// errKeeper keeps the source's own read error apart from the
// transport's, and tells eof (if set) when the source is exhausted.
type errKeeper struct {
	r   io.Reader
	o   *opened
	eof func()
}

func (e *errKeeper) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		if e.eof != nil {
			e.eof()
		}
	case err != nil:
		e.o.readErr = err
	}
	return n, err
}

// detectType names the media type of the first bytes, or "".
func detectType(head []byte) string {
	t := http.DetectContentType(head)
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	switch {
	case strings.HasPrefix(t, "video/"), strings.HasPrefix(t, "image/"):
		return t
	}
	return ""
}
