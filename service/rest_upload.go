package service

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	mediagwv1 "mediagw/gen/mediagw/v1"
)

// maxFieldBytes bounds one multipart form field.
const maxFieldBytes = 64 << 10

// upload serves POST /v1/media:upload. The body is streamed into the Upload
// RPC in ChunkSize messages; it is never held whole.
func (g *Gateway) upload(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, mediagwv1.MediaUploadService_Upload_FullMethodName,
		runtime.WithHTTPPathPattern("/v1/media:upload"))
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	var (
		start *mediagwv1.UploadStart
		body  io.Reader
	)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		start, body, err = multipartStart(r)
	} else {
		start, err = rawStart(r, mt)
		body = r.Body
	}
	if err != nil {
		g.fail(ctx, w, r, toStatus(err))
		return
	}
	resp, err := g.relay(ctx, start, body)
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

// relay streams start and body into the Upload RPC. A failure to read the
// body cancels the call, so nothing half-read is finalized.
func (g *Gateway) relay(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader) (*mediagwv1.UploadResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := g.client.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: start}}); err != nil {
		return nil, serverError(stream.CloseAndRecv())
	}
	for {
		// A message must not change after Send: each gets its own buffer.
		buf := make([]byte, g.opts.ChunkSize)
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			msg := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: buf[:n]}}
			if err := stream.Send(msg); err != nil {
				// The server ended the call; its status says why.
				return nil, serverError(stream.CloseAndRecv())
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return nil, invalidf("reading the request body: %v", rerr)
		}
	}
	return stream.CloseAndRecv()
}

func serverError(_ *mediagwv1.UploadResponse, err error) error {
	if err == nil {
		return errors.New("the upload ended before the body was sent")
	}
	return err
}

func (g *Gateway) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	_, out := runtime.MarshalerForRequest(g.mux, r)
	writeProblem(ctx, g.mux, out, w, r, toStatus(err))
}

// rawStart builds the start message of a raw-body upload from the query.
// media_type defaults to the Content-Type, total_bytes to Content-Length.
func rawStart(r *http.Request, contentType string) (*mediagwv1.UploadStart, error) {
	q := r.URL.Query()
	if q.Get("media_type") == "" && mediaTypes[contentType] {
		q.Set("media_type", contentType)
	}
	if q.Get("total_bytes") == "" {
		if r.ContentLength < 0 {
			return nil, invalidf("total_bytes is required when the body has no Content-Length (chunked transfer)")
		}
		q.Set("total_bytes", strconv.FormatInt(r.ContentLength, 10))
	}
	return startFromValues(q)
}

// multipartStart reads form fields up to the media part and returns the
// start message and the media part as the body. Fields must come before
// the media part; query parameters are used for fields not in the form.
func multipartStart(r *http.Request) (*mediagwv1.UploadStart, io.Reader, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, invalidf("reading the multipart body: %v", err)
	}
	v := r.URL.Query()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil, invalidf("the multipart body has no media part")
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
			if v.Get("total_bytes") == "" {
				return nil, nil, invalidf("multipart uploads need total_bytes, as a form field before the media part or as a query parameter")
			}
			st, err := startFromValues(v)
			return st, part, err
		}
		if err := readField(part, v); err != nil {
			return nil, nil, err
		}
	}
}

func readField(part *multipart.Part, v url.Values) error {
	b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return invalidf("reading form field %q: %v", part.FormName(), err)
	}
	if len(b) > maxFieldBytes {
		return invalidf("form field %q is larger than %d bytes", part.FormName(), maxFieldBytes)
	}
	v.Set(part.FormName(), string(b))
	return nil
}

// startFromValues parses the REST fields of an upload.
func startFromValues(v url.Values) (*mediagwv1.UploadStart, error) {
	st := &mediagwv1.UploadStart{MediaType: v.Get("media_type"), Sha256: v.Get("sha256")}
	cat, err := ParseCategory(v.Get("media_category"))
	if err != nil {
		return nil, err
	}
	st.MediaCategory = cat
	if st.TotalBytes, err = strconv.ParseInt(v.Get("total_bytes"), 10, 64); err != nil {
		return nil, invalidf("total_bytes %q is not a whole number", v.Get("total_bytes"))
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
			return nil, invalidf("shared %q is not true or false", s)
		}
	}
	return st, nil
}
