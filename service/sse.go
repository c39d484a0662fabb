package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	mediagwv1 "mediagw/gen/mediagw/v1"
)

// watchSSE serves GET /v1/media/{media_id}/status:watch as Server-Sent
// Events: one "status" event per state, and an "error" event when the
// watch fails after the first event.
func (g *Gateway) watchSSE(w http.ResponseWriter, r *http.Request, mediaID string) {
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, mediagwv1.MediaUploadService_WatchStatus_FullMethodName,
		runtime.WithHTTPPathPattern("/v1/media/{media_id}/status:watch"))
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	stream, err := g.client.WatchStatus(ctx, &mediagwv1.WatchStatusRequest{MediaId: mediaID})
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	_, out := runtime.MarshalerForRequest(g.mux, r)
	flusher, _ := w.(http.Flusher)
	started := false
	for {
		st, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if !started {
				g.fail(ctx, w, r, err)
				return
			}
			b, _ := json.Marshal(newProblem(err))
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
			flush(flusher)
			return
		}
		if !started {
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		b, err := out.Marshal(st)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
		flush(flusher)
	}
}

func flush(f http.Flusher) {
	if f != nil {
		f.Flush()
	}
}
