package rest

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	grpccodes "google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/engine"
)

// maxFieldBytes bounds one multipart form field.
const maxFieldBytes = 64 << 10

// upload serves POST /v1/media:upload: the REST transport of the upload
// engine. A raw body is read by the session straight into its segment
// buffers; a multipart body's media part likewise, through the multipart
// reader. Nothing is relayed and nothing is held whole.
func (g *Gateway) upload(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	ctx := r.Context()
	c, err := g.caller(r)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	// Both body shapes read through the idle deadline.
	rb := newRESTBody(w, r.Body, g.engine.IdleTimeout())
	defer rb.done()
	r.Body = struct {
		io.Reader
		io.Closer
	}{rb, r.Body}
	src := &restSource{r: r, rb: rb}
	resp, err := g.engine.Run(ctx, c, src)
	rb.unread(w, r)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	_, out := runtime.MarshalerForRequest(g.mux, r)
	buf, err := out.Marshal(resp)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	w.Header().Set("Content-Type", out.ContentType(resp))
	_, _ = w.Write(buf)
}

// restSource is a REST upload as the engine reads it (engine.Source):
// the start message from the query (and a multipart body's fields), the
// media from the raw body or the multipart media part. Both read through
// rb.
type restSource struct {
	r    *http.Request
	rb   *restBody
	body io.Reader  // rb, or the media part; set by Start
	part *mediaPart // the media part of a multipart body
}

func (s *restSource) Transport() string { return "rest" }

// MediaLen is the raw body's Content-Length; a multipart body's media
// length is not known before it is read.
func (s *restSource) MediaLen() int64 {
	if s.part != nil || s.r.ContentLength < 0 {
		return -1
	}
	return s.r.ContentLength
}

func (s *restSource) Start() (*mediagwv1.UploadStart, error) {
	r := s.r
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apierr.Invalidf("the query string is malformed: %v", err)
	}
	if err := keyFromHeader(r.Header, q); err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		st, part, err := multipartStart(r, q)
		if part != nil {
			s.body, s.part = part, part
		}
		return st, err
	}
	s.body = s.rb
	return rawStart(r, q, mt)
}

func (s *restSource) Read(p []byte) (int, error) { return s.body.Read(p) }

// Deliver has the session read the media straight into its segment
// buffers.
func (s *restSource) Deliver(dst engine.Sink) error {
	_, err := dst.ReadFrom(s.body)
	return err
}

// End checks that a multipart body closes right after its media part.
func (s *restSource) End() error {
	if s.part != nil {
		return s.part.end()
	}
	return nil
}

func (s *restSource) Interrupt() { s.rb.interrupt() }

// restBody is a request body whose reads fail when the caller sent no byte
// for the idle timeout. The deadline is moved on as bytes arrive (at most
// every idle/16, so that a steady caller costs next to nothing), so a slow
// but steady caller is never cut off.
type restBody struct {
	r     io.Reader
	rc    *http.ResponseController
	idle  time.Duration
	armed time.Time
	// deadline is the idle deadline last set.
	deadline time.Time
	n        int64 // bytes read
	ok       bool  // deadlines are supported
	eof      bool  // the body was read to its end
	// stopped is set by interrupt; reads fail from then on. mu orders
	// interrupt's deadline with the re-arming of the idle deadline, so
	// that a read never moves the deadline past a stop.
	stopped atomic.Bool
	mu      sync.Mutex
}

func newRESTBody(w http.ResponseWriter, r io.Reader, idle time.Duration) *restBody {
	b := &restBody{r: r, rc: http.NewResponseController(w), idle: idle}
	b.armed = time.Now()
	b.deadline = b.armed.Add(idle)
	b.ok = b.rc.SetReadDeadline(b.deadline) == nil
	return b
}

// interrupt ends a blocked read: the upload is being stopped. The
// connection cannot be read again.
func (b *restBody) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped.Store(true)
	if b.ok {
		_ = b.rc.SetReadDeadline(time.Now())
	}
}

// rearm moves the idle deadline on, unless the body was stopped.
func (b *restBody) rearm(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped.Load() {
		return
	}
	b.armed, b.deadline = now, now.Add(b.idle)
	_ = b.rc.SetReadDeadline(b.deadline)
}

// unread reports whether the body was not read to its end. An answer
// given before (a refusal, or the replay of a finished key) closes the
// connection, so that net/http does not first read and discard what is
// left of the body.
func (b *restBody) unread(w http.ResponseWriter, r *http.Request) {
	if !b.eof && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// drainGrace bounds how long net/http may read (and discard) what is left
// of a body after the answer. It does so, up to 256 KiB, and half-closes
// before closing, so that the caller reads the answer instead of a
// connection reset.
const drainGrace = 5 * time.Second

// done bounds reading after the answer.
func (b *restBody) done() {
	if !b.eof && b.ok {
		_ = b.rc.SetReadDeadline(time.Now().Add(min(drainGrace, b.idle)))
	}
}

func (b *restBody) Read(p []byte) (int, error) {
	if b.stopped.Load() {
		return 0, engine.ErrStopped
	}
	if b.ok {
		if now := time.Now(); now.Sub(b.armed) > b.idle/16 {
			b.rearm(now)
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof = true
		if b.ok {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	if err != nil && err != io.EOF {
		if b.stopped.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, engine.ErrStopped
		}
		return n, b.readError(err)
	}
	return n, err
}

// readError explains why reading the body failed.
func (b *restBody) readError(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		// The idle deadline, or the one interrupt set: the idle one is
		// past. (An idle timeout ends the request's context too, which
		// interrupts the body: whether it was stopped says nothing.)
		if time.Now().Before(b.deadline) {
			return engine.ErrStopped
		}
		return apierr.CallerIdle(b.idle, b.n)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierr.Invalidf("the request body is larger than %d bytes", mbe.Limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The connection ended mid-body: what a gRPC caller's lost stream
		// is (Canceled), and resumable.
		return &apierr.Error{Code: grpccodes.Canceled, Resumable: true,
			Msg: fmt.Sprintf("the caller's connection ended before the body's declared length (after %d bytes)", b.n)}
	}
	return &apierr.Error{Code: grpccodes.Canceled, Msg: fmt.Sprintf("reading the request body: %v", err)}
}

// rawStart builds the start message of a raw-body upload from the query.
// media_type defaults to the Content-Type, total_bytes to Content-Length.
func rawStart(r *http.Request, q url.Values, contentType string) (*mediagwv1.UploadStart, error) {
	if q.Get("media_type") == "" && engine.IsMediaType(contentType) {
		q.Set("media_type", contentType)
	}
	if q.Get("total_bytes") == "" && !q.Has("resume_offset") {
		// A chunked body of unknown length is spooled (total_bytes 0).
		q.Set("total_bytes", strconv.FormatInt(max(r.ContentLength, 0), 10))
	}
	return startFromValues(q)
}

// multipartStart reads form fields up to the media part and returns the
// start message and the media part as the body. Fields must come before
// the media part; query parameters are used for fields not in the form.
func multipartStart(r *http.Request, v url.Values) (*mediagwv1.UploadStart, *mediaPart, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, apierr.Invalidf("reading the multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil, apierr.Invalidf("the multipart body has no part named media")
		}
		if err != nil {
			return nil, nil, apierr.Invalidf("reading the multipart body: %v", err)
		}
		name := part.FormName()
		if name == "media" {
			if v.Get("media_type") == "" {
				if ct := part.Header.Get("Content-Type"); engine.IsMediaType(ct) {
					v.Set("media_type", ct)
				}
			}
			if v.Get("total_bytes") == "" && !v.Has("resume_offset") {
				v.Set("total_bytes", "0") // unknown: the media part is spooled
			}
			st, err := startFromValues(v)
			return st, &mediaPart{part: part, mr: mr}, err
		}
		if part.FileName() != "" {
			return nil, nil, apierr.Invalidf("form part %s is a file; the media must be the part named media", apierr.Quote(name))
		}
		if err := readField(part, v); err != nil {
			return nil, nil, err
		}
	}
}

// mediaPart is the media part of a multipart upload. Its end checks that
// the body closes right after it: a field or file after the media would
// be ignored, and a body cut before its closing boundary may be cut short.
type mediaPart struct {
	part *multipart.Part
	mr   *multipart.Reader
	n    int64
}

func (m *mediaPart) Read(p []byte) (int, error) {
	n, err := m.part.Read(p)
	m.n += int64(n)
	var in *apierr.Error
	if err != nil && err != io.EOF && !errors.As(err, &in) {
		return n, apierr.Invalidf("reading the media part after %d bytes: %v", m.n, err)
	}
	return n, err
}

func (m *mediaPart) end() error {
	next, err := m.mr.NextPart()
	switch {
	case err == nil:
		name := next.FormName()
		return apierr.Invalidf("form part %s follows the media part: fields must come before the media part (or go in the query), and only one media part is allowed; the upload was not finalized", apierr.Quote(name))
	case errors.Is(err, io.EOF):
		return nil
	default:
		return apierr.Invalidf("the multipart body ended without its closing boundary (%v); the upload was not finalized", err)
	}
}

func readField(part *multipart.Part, v url.Values) error {
	b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return apierr.Invalidf("reading form field %s: %v", apierr.Quote(part.FormName()), err)
	}
	if len(b) > maxFieldBytes {
		return apierr.Invalidf("form field %s is larger than %d bytes (the media must be the part named media)", apierr.Quote(part.FormName()), maxFieldBytes)
	}
	v.Set(part.FormName(), string(b))
	return nil
}

// keyFromHeader takes the idempotency key from the Idempotency-Key header
// into the fields, where it may also be given as idempotency_key.
func keyFromHeader(h http.Header, q url.Values) error {
	hk := h.Values("Idempotency-Key")
	switch {
	case len(hk) == 0:
		return nil
	case len(hk) > 1:
		return apierr.Invalidf("the Idempotency-Key header is given %d times", len(hk))
	case q.Has("idempotency_key") && q.Get("idempotency_key") != hk[0]:
		return apierr.Invalidf("the Idempotency-Key header and the idempotency_key field differ")
	}
	q.Set("idempotency_key", hk[0])
	return nil
}

// startFromValues parses the REST fields of an upload.
func startFromValues(v url.Values) (*mediagwv1.UploadStart, error) {
	st := &mediagwv1.UploadStart{MediaType: v.Get("media_type"), Sha256: v.Get("sha256"),
		IdempotencyKey: v.Get("idempotency_key"), Account: v.Get("account")}
	if v.Has("resume_offset") {
		off, err := strconv.ParseInt(v.Get("resume_offset"), 10, 64)
		if err != nil || off < 0 {
			return nil, apierr.Invalidf("resume_offset %s is not a byte offset", apierr.Quote(v.Get("resume_offset")))
		}
		st.ResumeOffset = &off
	}
	cat, err := engine.ParseCategory(v.Get("media_category"))
	if err != nil {
		return nil, err
	}
	st.MediaCategory = cat
	if t := v.Get("total_bytes"); t != "" || st.ResumeOffset == nil {
		if st.TotalBytes, err = strconv.ParseInt(t, 10, 64); err != nil {
			return nil, apierr.Invalidf("total_bytes %s is not a whole number", apierr.Quote(t))
		}
	}
	for _, o := range v["additional_owners"] {
		for _, id := range strings.Split(o, ",") {
			if id = strings.TrimSpace(id); id != "" {
				st.AdditionalOwners = append(st.AdditionalOwners, id)
			}
		}
	}
	if s := v.Get("shared"); s != "" {
		if st.Shared, err = strconv.ParseBool(s); err != nil {
			return nil, apierr.Invalidf("shared %s is not true or false", apierr.Quote(s))
		}
	}
	if err := actionsFromValues(v, st); err != nil { // actions.go
		return nil, err
	}
	return st, nil
}
