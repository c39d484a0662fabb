package service

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
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	grpccodes "google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// maxFieldBytes bounds one multipart form field.
const maxFieldBytes = 64 << 10

// upload serves POST /v1/media:upload: the REST transport of the upload
// core. A raw body is read by the session straight into its segment
// buffers; a multipart body's media part likewise, through the multipart
// reader. Nothing is relayed and nothing is held whole.
func (g *Gateway) upload(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	ctx := r.Context()
	c, err := g.s.callerFromRequest(r)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	// Both body shapes read through the idle deadline.
	rb := newRESTBody(w, r.Body, g.s.cfg.IdleTimeout)
	defer rb.done()
	r.Body = struct {
		io.Reader
		io.Closer
	}{rb, r.Body}
	var body io.Reader
	start := func() (*mediagwv1.UploadStart, error) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, invalidf("the query string is malformed: %v", err)
		}
		if err := keyFromHeader(r.Header, q); err != nil {
			return nil, err
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "multipart/form-data" {
			st, part, err := multipartStart(r, q)
			body = part
			return st, err
		}
		body = rb
		return rawStart(r, q, mt)
	}
	o := uploadOptions{transport: transportREST, bodyLen: r.ContentLength}
	resp, err := g.s.uploadFrom(ctx, c, o, start, lazyBody{&body, rb})
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

// lazyBody reads the body the start function chose once it ran: the raw
// body or the multipart media part. Both read through rb.
type lazyBody struct {
	r  *io.Reader
	rb *restBody
}

func (b lazyBody) interrupt() { b.rb.interrupt() }

func (b lazyBody) Read(p []byte) (int, error) { return (*b.r).Read(p) }

func (b lazyBody) end() error {
	if e, ok := (*b.r).(bodyEnder); ok {
		return e.end()
	}
	return nil
}

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
	// stopped is set by interrupt; reads fail from then on.
	stopped atomic.Bool
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
	b.stopped.Store(true)
	if b.ok {
		_ = b.rc.SetReadDeadline(time.Now())
	}
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
		return 0, errStopped
	}
	if b.ok {
		if now := time.Now(); now.Sub(b.armed) > b.idle/16 {
			b.armed, b.deadline = now, now.Add(b.idle)
			_ = b.rc.SetReadDeadline(b.deadline)
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
			return n, errStopped
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
			return errStopped
		}
		return callerIdle(b.idle, b.n)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return invalidf("the request body is larger than %d bytes", mbe.Limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &inputError{code: grpccodes.InvalidArgument, resumable: true,
			msg: fmt.Sprintf("the request body ended before its declared length (after %d bytes)", b.n)}
	}
	return &inputError{code: grpccodes.Canceled, msg: fmt.Sprintf("reading the request body: %v", err)}
}

// rawStart builds the start message of a raw-body upload from the query.
// media_type defaults to the Content-Type, total_bytes to Content-Length.
func rawStart(r *http.Request, q url.Values, contentType string) (*mediagwv1.UploadStart, error) {
	if q.Get("media_type") == "" && mediaTypes[contentType] {
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
func multipartStart(r *http.Request, v url.Values) (*mediagwv1.UploadStart, io.Reader, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, invalidf("reading the multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil, invalidf("the multipart body has no part named media")
		}
		if err != nil {
			return nil, nil, invalidf("reading the multipart body: %v", err)
		}
		name := part.FormName()
		if name == "media" {
			if v.Get("media_type") == "" {
				if ct := part.Header.Get("Content-Type"); mediaTypes[ct] {
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
			return nil, nil, invalidf("form part %s is a file; the media must be the part named media", quote(name))
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
	var in *inputError
	if err != nil && err != io.EOF && !errors.As(err, &in) {
		return n, invalidf("reading the media part after %d bytes: %v", m.n, err)
	}
	return n, err
}

func (m *mediaPart) end() error {
	next, err := m.mr.NextPart()
	switch {
	case err == nil:
		name := next.FormName()
		return invalidf("form part %s follows the media part: fields must come before the media part (or go in the query), and only one media part is allowed; the upload was not finalized", quote(name))
	case errors.Is(err, io.EOF):
		return nil
	default:
		return invalidf("the multipart body ended without its closing boundary (%v); the upload was not finalized", err)
	}
}

func readField(part *multipart.Part, v url.Values) error {
	b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return invalidf("reading form field %s: %v", quote(part.FormName()), err)
	}
	if len(b) > maxFieldBytes {
		return invalidf("form field %s is larger than %d bytes (the media must be the part named media)", quote(part.FormName()), maxFieldBytes)
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
		return invalidf("the Idempotency-Key header is given %d times", len(hk))
	case q.Has("idempotency_key") && q.Get("idempotency_key") != hk[0]:
		return invalidf("the Idempotency-Key header and the idempotency_key field differ")
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
			return nil, invalidf("resume_offset %s is not a byte offset", quote(v.Get("resume_offset")))
		}
		st.ResumeOffset = &off
	}
	cat, err := ParseCategory(v.Get("media_category"))
	if err != nil {
		return nil, err
	}
	st.MediaCategory = cat
	if t := v.Get("total_bytes"); t != "" || st.ResumeOffset == nil {
		if st.TotalBytes, err = strconv.ParseInt(t, 10, 64); err != nil {
			return nil, invalidf("total_bytes %s is not a whole number", quote(t))
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
			return nil, invalidf("shared %s is not true or false", quote(s))
		}
	}
	return st, nil
}
