package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sink is a minimal X: the four v2 dedicated upload endpoints mediagw
// speaks, a bearer token check, and a digest of every media's bytes in
// segment-index order (XXH64 by default, or SHA-256; see newDigest). It
// keeps nothing on disk. A segment whose turn has come is hashed while its
// body streams in; one that arrives before a segment preceding it is read
// into a pooled buffer and held until its turn. With P APPENDs of an upload
// in flight that is usually at most P-1 segments per upload, but an APPEND
// is answered once read, so a slow segment lets its caller send further
// ones: maxHeld bounds the bytes held over all media (beyond it the sink
// answers 503, which mediagw retries). What the sink spends to receive is
// the floor any X pays, and it is measured apart from mediagw's.
type sink struct {
	digest     string // digestXXH64 or digestSHA256
	token      string
	latency    time.Duration
	maxSegment int64
	maxHeld    int64 // bytes of early segments held over all media; more is 503

	mu     sync.Mutex
	media  map[string]*sinkMedia
	nextID uint64

	held, heldPeak atomic.Int64 // bytes of early segments held
	bufs           sync.Pool    // *[]byte of maxSegment+1
}

// sinkMedia is one upload session. Fields below mu are guarded by it.
type sinkMedia struct {
	id, key, mediaType string
	total              int64

	mu          sync.Mutex
	h           hash.Hash
	next        int  // lowest segment index not hashed yet
	hashing     bool // a goroutine is writing segment next into h
	hashed      int64
	early       map[int]*[]byte // segments above next, with their lengths in earlyN
	earlyN      map[int]int
	earlyPeak   int
	active      int
	activePeak  int
	appends     int
	resent      int
	firstAppend time.Time
	finalized   time.Time
	lastSeen    time.Time
	sum         string
}

// sinkInfo is what GET /_sink/media/{id} answers; the field names are the
// emulator's (GET /_xfake/media/{id}), so one inspector reads both.
type sinkInfo struct {
	ID             string    `json:"id"`
	State          string    `json:"state"` // uploading or succeeded
	TotalBytes     int64     `json:"total_bytes"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256,omitempty"`
	Digest         string    `json:"digest"` // "xxh64:HEX" or "sha256:HEX" after FINALIZE
	Segments       int       `json:"segments"`
	AppendRequests int       `json:"append_requests"`
	MaxConcurrent  int       `json:"max_concurrent_appends"`
	MaxHeld        int       `json:"max_held_segments"`
	Resent         int       `json:"resent_segments"`
	FirstAppendAt  time.Time `json:"first_append_at,omitzero"`
	FinalizedAt    time.Time `json:"finalized_at,omitzero"`
}

func newSink(digest, token string, latency time.Duration, maxSegment, maxHeld int64) *sink {
	s := &sink{digest: digest, token: token, latency: latency, maxSegment: maxSegment, maxHeld: maxHeld, media: map[string]*sinkMedia{}}
	s.bufs.New = func() any { b := make([]byte, maxSegment+1); return &b }
	return s
}

// handler routes the sink's endpoints.
func (s *sink) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /2/media/upload/initialize", s.x(s.initialize))
	mux.Handle("POST /2/media/upload/{id}/append", s.x(s.append))
	mux.Handle("POST /2/media/upload/{id}/finalize", s.x(s.finalize))
	mux.Handle("GET /2/media/upload", s.x(s.status))
	mux.HandleFunc("GET /_sink/media/{id}", s.inspect)
	mux.HandleFunc("GET /_sink/stats", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		n := len(s.media)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int64{"media": int64(n), "held_bytes": s.held.Load(), "held_bytes_peak": s.heldPeak.Load()})
	})
	return mux
}

// x wraps an X endpoint: the added latency, then the token check.
func (s *sink) x(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.latency > 0 {
			t := time.NewTimer(s.latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			problem(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		h(w, r)
	})
}

// problem writes an error in X's v2 shape: errors[] next to Problem fields.
func problem(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]string{{"message": msg}},
		"title":  http.StatusText(status), "detail": msg, "status": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *sink) initialize(w http.ResponseWriter, r *http.Request) {
	var p struct {
		MediaType     string `json:"media_type"`
		MediaCategory string `json:"media_category"`
		TotalBytes    int64  `json:"total_bytes"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&p); err != nil {
		problem(w, http.StatusBadRequest, "Request body is not valid JSON.")
		return
	}
	if p.MediaType == "" || p.TotalBytes <= 0 {
		problem(w, http.StatusBadRequest, "media_type and a positive total_bytes are required.")
		return
	}
	s.mu.Lock()
	s.nextID++
	id := strconv.FormatUint(1880000000000000000+s.nextID, 10)
	m := &sinkMedia{id: id, key: "7_" + id, mediaType: p.MediaType, total: p.TotalBytes, h: newDigest(s.digest),
		early: map[int]*[]byte{}, earlyN: map[int]int{}, lastSeen: time.Now()}
	s.media[id] = m
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": id, "media_key": m.key, "expires_after_secs": 86400}})
}

func (s *sink) lookup(w http.ResponseWriter, id string) *sinkMedia {
	s.mu.Lock()
	m := s.media[id]
	s.mu.Unlock()
	if m == nil {
		problem(w, http.StatusNotFound, "BadRequest: Not found")
	}
	return m
}

// errSink is a refusal with its HTTP status.
type errSink struct {
	status int
	msg    string
}

func (e *errSink) Error() string { return e.msg }

// append reads a multipart APPEND: segment_index, then the media part,
// streamed into the hash when its turn has come, else held.
func (s *sink) append(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r.PathValue("id"))
	if m == nil {
		return
	}
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" || params["boundary"] == "" {
		problem(w, http.StatusBadRequest, "APPEND must be multipart/form-data.")
		return
	}
	m.mu.Lock()
	m.appends++
	m.active++
	m.activePeak = max(m.activePeak, m.active)
	if m.firstAppend.IsZero() {
		m.firstAppend = time.Now()
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.active--
		m.lastSeen = time.Now()
		m.mu.Unlock()
	}()
	// A larger buffer than multipart's own 4 KiB makes the socket reads
	// large; boundary scanning still happens in multipart.
	mr := multipart.NewReader(bufio.NewReaderSize(r.Body, 64<<10), params["boundary"])
	idx, got := -1, false
	var early *[]byte // media that came before segment_index
	earlyN := 0
	defer func() {
		if early != nil {
			s.bufs.Put(early)
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			problem(w, http.StatusBadRequest, "Malformed multipart body.")
			return
		}
		switch part.FormName() {
		case "segment_index":
			b, _ := io.ReadAll(io.LimitReader(part, 16))
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || n < 0 || n > 999 {
				problem(w, http.StatusBadRequest, "SegmentIndex must be between 0 and 999.")
				return
			}
			idx = n
		case "media":
			if got {
				problem(w, http.StatusBadRequest, "More than one media part.")
				return
			}
			got = true
			if idx < 0 {
				if early, earlyN, err = s.read(part); err != nil {
					sinkFail(w, err)
					return
				}
				continue
			}
			if err := s.receive(m, idx, part); err != nil {
				sinkFail(w, err)
				return
			}
		default:
			_, _ = io.Copy(io.Discard, part)
		}
	}
	switch {
	case !got || idx < 0:
		problem(w, http.StatusBadRequest, "segment_index and media are required.")
		return
	case early != nil:
		if err := s.hold(m, idx, early, earlyN); err != nil {
			sinkFail(w, err)
			return
		}
		early = nil
	}
	w.WriteHeader(http.StatusNoContent)
}

func sinkFail(w http.ResponseWriter, err error) {
	var e *errSink
	if errors.As(err, &e) {
		problem(w, e.status, e.msg)
		return
	}
	problem(w, http.StatusBadRequest, "Reading the media failed: "+err.Error())
}

func (s *sink) finalize(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r.PathValue("id"))
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.finalized.IsZero():
		problem(w, http.StatusBadRequest, "BadRequest: Media already finalized")
		return
	case m.hashing || m.active > 0 || len(m.early) > 0 || m.hashed != m.total:
		problem(w, http.StatusBadRequest, "Segments do not add up to provided total file size.")
		return
	}
	m.finalized = time.Now()
	m.sum = hex.EncodeToString(m.h.Sum(nil))
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": m.id, "media_key": m.key, "size": m.total, "expires_after_secs": 86400}})
}

func (s *sink) status(w http.ResponseWriter, r *http.Request) {
	if c := r.URL.Query().Get("command"); c != "" && c != "STATUS" {
		problem(w, http.StatusBadRequest, "command must be STATUS.")
		return
	}
	m := s.lookup(w, r.URL.Query().Get("media_id"))
	if m == nil {
		return
	}
	m.mu.Lock()
	done := !m.finalized.IsZero()
	m.mu.Unlock()
	if !done {
		problem(w, http.StatusBadRequest, "BadRequest: Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": m.id, "media_key": m.key, "size": m.total,
		"processing_info": map[string]any{"state": "succeeded", "progress_percent": 100}}})
}

func (s *sink) inspect(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.media[r.PathValue("id")]
	s.mu.Unlock()
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "media not found"})
		return
	}
	m.mu.Lock()
	info := sinkInfo{ID: m.id, State: "uploading", TotalBytes: m.total, Size: m.hashed,
		Segments: m.next, AppendRequests: m.appends, MaxConcurrent: m.activePeak, MaxHeld: m.earlyPeak,
		Resent: m.resent, FirstAppendAt: m.firstAppend, FinalizedAt: m.finalized}
	if !m.finalized.IsZero() {
		info.State, info.Digest = "succeeded", s.digest+":"+m.sum
		if s.digest == digestSHA256 {
			info.SHA256 = m.sum
		}
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// sweep drops the held segments of uploads that have been silent for idle
// (a caller that gave up never sends FINALIZE), so held memory stays
// bounded by the uploads still going on.
func (s *sink) sweep(idle time.Duration) {
	s.mu.Lock()
	list := make([]*sinkMedia, 0, len(s.media))
	for _, m := range s.media {
		list = append(list, m)
	}
	s.mu.Unlock()
	for _, m := range list {
		m.mu.Lock()
		if m.active == 0 && !m.hashing && time.Since(m.lastSeen) > idle {
			for i, b := range m.early {
				s.release(b, m.earlyN[i])
			}
			clear(m.early)
			clear(m.earlyN)
		}
		m.mu.Unlock()
	}
}

// String describes the sink's settings for its start-up line.
func (s *sink) String() string {
	return fmt.Sprintf("digest %s, latency %s, max segment %d, max held %d", s.digest, s.latency, s.maxSegment, s.maxHeld)
}
