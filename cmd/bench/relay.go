package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The bare relay's segment size and APPENDs in flight: xurl's segment
// size, and mediagw's default --parallelism.
const (
	relaySegment  = 4 << 20
	relayParallel = 4
)

// relay is the least a gateway in front of X must do: it reads a request
// body in 4 MiB pieces and POSTs each to X as a multipart APPEND, 4 in
// flight (5 buffers: 4 sending, 1 filling), between a plain INIT and
// FINALIZE. It has no retries, limits, telemetry or validation; its CPU
// time per byte is the reference mediagw's is compared with.
type relay struct {
	x    *baseline // INIT, APPEND and FINALIZE calls to X
	bufs sync.Pool
}

func newRelay(xURL, tok string) *relay {
	r := &relay{x: &baseline{url: xURL, token: tok, hc: newHTTPClient()}}
	r.bufs.New = func() any { b := make([]byte, relaySegment); return &b }
	return r
}

// ServeHTTP relays one upload: POST /upload?media_type=T with the raw bytes
// and a Content-Length; the answer is {"media_id": ID}.
func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := rl.x.initialize(r.Context(), cmp.Or(r.URL.Query().Get("media_type"), "video/mp4"), r.ContentLength)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	sem := make(chan struct{}, relayParallel)
	var wg sync.WaitGroup
	for i := 0; ctx.Err() == nil; i++ {
		bp := rl.bufs.Get().(*[]byte)
		n, rerr := io.ReadFull(r.Body, *bp)
		if n == 0 {
			rl.bufs.Put(bp)
		} else {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				rl.bufs.Put(bp)
				continue
			}
			wg.Go(func() {
				defer func() { <-sem; rl.bufs.Put(bp) }()
				if err := rl.x.appendSegment(ctx, id, i, bytes.NewReader((*bp)[:n]), int64(n)); err != nil {
					cancel(err)
				}
			})
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		} else if rerr != nil {
			cancel(rerr)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if err := rl.x.finalize(ctx, id); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"media_id": id})
}

// discard is the far end of the loopback hop: it reads the request body
// in 256 KiB reads, keeps nothing and answers {"bytes": N}.
func discard(w http.ResponseWriter, r *http.Request) {
	bp := discardBufs.Get().(*[]byte)
	defer discardBufs.Put(bp)
	var total int64
	for {
		n, err := r.Body.Read(*bp)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"bytes":` + strconv.FormatInt(total, 10) + "}"))
}

var discardBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// hopClient sends the bytes of one upload over one HTTP request to a
// discard server and checks that they all arrived.
type hopClient struct {
	url string
	hc  *http.Client
}

func (h *hopClient) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now(), selfChecked: true}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/discard", io.NopCloser(g))
	if err != nil {
		u.err = err
		return u
	}
	req.ContentLength = g.size
	var ans struct {
		Bytes int64 `json:"bytes"`
	}
	if u.err = do(h.hc, req, &ans); u.err == nil && ans.Bytes != g.size {
		u.err = fmt.Errorf("discard server read %d bytes, sent %d", ans.Bytes, g.size)
	}
	return u
}
