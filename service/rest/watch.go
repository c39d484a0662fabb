package rest

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/engine"
)

// watch serves GET /v1/media/{media_id}/status:watch in-process, as
// newline-delimited JSON ({"result": status} per line) or, with Accept:
// text/event-stream, as Server-Sent Events ("status" events). An error
// before the first state is an HTTP error with a problem body; after it,
// the stream ends with the problem in-band: an {"error": problem} line, or
// an "error" event.
func (g *Gateway) watch(w http.ResponseWriter, r *http.Request, params map[string]string) {
	ctx := r.Context()
	id := params["media_id"]
	if err := engine.ValidMediaID(id); err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	c, err := g.caller(r)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	auth, err := g.engine.StatusAccess(c, id)
	if err != nil {
		g.fail(ctx, w, r, err)
		return
	}
	sse := wantsSSE(r)
	_, out := runtime.MarshalerForRequest(g.mux, r)
	flusher, _ := w.(http.Flusher)
	started := false
	send := func(st *mediagwv1.ProcessingStatus) error {
		b, err := out.Marshal(st)
		if err != nil {
			return err
		}
		if !started {
			h := w.Header()
			if sse {
				h.Set("Content-Type", "text/event-stream")
				h.Set("Cache-Control", "no-cache")
				h.Set("X-Accel-Buffering", "no")
			} else {
				h.Set("Content-Type", "application/x-ndjson")
			}
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if sse {
			_, err = fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
		} else {
			_, err = fmt.Fprintf(w, "{\"result\":%s}\n", b)
		}
		if flusher != nil {
			flusher.Flush()
		}
		return err
	}
	err = g.relay.Watch(ctx, auth, id, send)
	if err == nil || ctx.Err() != nil {
		return
	}
	if !started {
		g.fail(ctx, w, r, err)
		return
	}
	b, _ := json.Marshal(apierr.NewProblem(err))
	if sse {
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
	} else {
		fmt.Fprintf(w, "{\"error\":%s}\n", b)
	}
	if flusher != nil {
		flusher.Flush()
	}
}
