package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// Sizes of the starvation row: what each slow caller announces, and the
// legitimate upload.
const (
	starveDeclared = 20 << 20
	starveLegit    = 2 << 20
	starveSettle   = 2 * time.Second // for the slow callers to be admitted
)

// StarvationResult is the adv/starvation row.
type StarvationResult struct {
	Name         string        `json:"name"`
	GRPCHolders  int           `json:"grpc_holders"`
	RESTTrickles int           `json:"rest_trickles"`
	TrickleRate  int           `json:"trickle_bytes_per_s"`
	Legit        []LegitResult `json:"legit"`
	// Ended counts how the slow callers ended, e.g. "grpc ResourceExhausted"
	// or "rest stopped by the bench"; EndedAfter is the median time from
	// their start to an end the server chose, by the same key.
	Ended      map[string]int     `json:"ended"`
	EndedAfter map[string]float64 `json:"ended_after_s,omitempty"`
	PeakRSSMiB float64            `json:"peak_rss_mib"`
}

// LegitResult is the legitimate upload of one path.
type LegitResult struct {
	Path    string  `json:"path"`
	Alone   Summary `json:"alone_s"`
	Present timed   `json:"among_slow_callers"`
	After   timed   `json:"after_slow_callers_stopped"`
}

// timed is one upload's duration or how it failed: Outcome is "OK", a
// gRPC code, "HTTP n", timeout (the bench's wait ran out) or transport.
type timed struct {
	Seconds float64 `json:"seconds"`
	Outcome string  `json:"outcome"`
	Error   string  `json:"error,omitempty"`
}

func (t timed) text() string {
	switch t.Outcome {
	case "OK":
		return fmt.Sprintf("%.2f s", t.Seconds)
	case "timeout", codes.DeadlineExceeded.String():
		return fmt.Sprintf("not done after %.1f s", t.Seconds)
	}
	return fmt.Sprintf("%s after %.1f s", t.Outcome, t.Seconds)
}

func (r StarvationResult) endings() string {
	keys := make([]string, 0, len(r.Ended))
	for k := range r.Ended {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		s := fmt.Sprintf("%s %d", k, r.Ended[k])
		if at, ok := r.EndedAfter[k]; ok {
			s += fmt.Sprintf(" (median %.1f s)", at)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// slowEnd is how one slow caller ended.
type slowEnd struct {
	key      string
	after    time.Duration
	byServer bool
}

// starvation measures a legitimate upload alone, then among slow callers
// that hold mediagw's resources, then after the bench stops them.
func (b *bench) starvation(ctx context.Context, name string, v variant) (StarvationResult, error) {
	a := b.cfg.adv
	res := StarvationResult{Name: name, GRPCHolders: a.starveGRPC, RESTTrickles: a.starveREST, TrickleRate: a.starveRate, Ended: map[string]int{}}
	x, err := b.startX(ctx, xSink, 0, "")
	if err != nil {
		return res, err
	}
	defer x.stop()
	mg, grpcAddr, httpAddr, err := b.startMediagw(ctx, x.url, starveDeclared, v)
	if err != nil {
		return res, err
	}
	defer mg.stop()
	sampler := sampleRSS(mg.pid())
	g, err := newGRPCClient(grpcAddr, b.cfg.grpcChunk)
	if err != nil {
		return res, err
	}
	defer g.conn.Close()
	clients := []struct {
		path string
		c    uploader
	}{{modeGRPC, g}, {modeREST, &restClient{url: "http://" + httpAddr, path: "/v1/media:upload", hc: newHTTPClient()}}}
	// legit sends one upload per path at once and waits at most limit.
	legit := func(limit time.Duration) []timed {
		lctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		out := make([]timed, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				u := c.c.upload(lctx, newGen(starveLegit))
				out[i].Seconds = u.end.Sub(u.start).Seconds()
				err := u.err
				out[i].Outcome = outcome(err)
				if err == nil {
					if _, err = x.in.check(ctx, u); err != nil {
						out[i].Outcome = "not byte-exact"
					}
				}
				if err != nil {
					out[i].Error = trim(err.Error(), 300)
				}
			})
		}
		wg.Wait()
		return out
	}
	alone := make([][]float64, len(clients))
	for range 3 {
		for i, t := range legit(time.Minute) {
			if t.Error != "" {
				return res, fmt.Errorf("legitimate %s upload alone: %s", clients[i].path, t.Error)
			}
			alone[i] = append(alone[i], t.Seconds)
		}
	}

	slowCtx, stopSlow := context.WithCancel(ctx)
	defer stopSlow()
	ends := make(chan slowEnd, a.starveGRPC+a.starveREST)
	var wg sync.WaitGroup
	start := time.Now()
	// Each trickle on a connection of its own, written as it is read.
	trickles := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true,
		WriteBufferSize: max(1, a.starveRate/10)}}
	defer trickles.CloseIdleConnections()
	for range a.starveGRPC {
		wg.Go(func() { ends <- holdGRPC(slowCtx, grpcAddr, start) })
	}
	for range a.starveREST {
		wg.Go(func() { ends <- trickleREST(slowCtx, trickles, "http://"+httpAddr, a.starveRate, start) })
	}
	select {
	case <-time.After(starveSettle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	logf("  legitimate uploads among %d slow callers (waiting at most %s)", a.starveGRPC+a.starveREST, a.starveTimeout)
	present := legit(a.starveTimeout)
	stopSlow()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("slow callers did not stop within 30 s of being cancelled")
	}
	close(ends)
	afterServer := map[string][]float64{}
	for e := range ends {
		res.Ended[e.key]++
		if e.byServer {
			afterServer[e.key] = append(afterServer[e.key], e.after.Seconds())
		}
	}
	if len(afterServer) > 0 {
		res.EndedAfter = map[string]float64{}
		for k, xs := range afterServer {
			res.EndedAfter[k] = summarize(xs).Median
		}
	}
	after := legit(time.Minute)
	for i, c := range clients {
		res.Legit = append(res.Legit, LegitResult{Path: c.path, Alone: summarize(alone[i]), Present: present[i], After: after[i]})
	}
	res.PeakRSSMiB = float64(sampler.finish()) / 1024
	return res, exited(mg, x.proc)
}

// holdGRPC opens an Upload stream on a connection of its own, sends the
// start message (20 MiB of video/mp4 announced) and 16 bytes, then waits
// for the server to end the call or the bench to cancel ctx.
func holdGRPC(ctx context.Context, addr string, t0 time.Time) slowEnd {
	end := func(err error) slowEnd {
		e := slowEnd{after: time.Since(t0), byServer: ctx.Err() == nil}
		switch {
		case !e.byServer && status.Code(err) == codes.Canceled:
			e.key = "grpc stopped by the bench"
		default:
			e.key = "grpc " + outcome(err)
		}
		return e
	}
	c, err := newGRPCClient(addr, 16)
	if err != nil {
		return end(err)
	}
	defer c.conn.Close()
	stream, err := c.api.Upload(ctx)
	if err != nil {
		return end(err)
	}
	g := newGen(starveDeclared)
	for _, m := range []*mediagwv1.UploadRequest{
		{Payload: &mediagwv1.UploadRequest_Start{Start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: starveDeclared}}},
		{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: g.Chunk(16)}},
	} {
		if err := stream.Send(m); err != nil {
			break // the server ended the call: RecvMsg has its status
		}
	}
	// RecvMsg returns when the server answers or ends the call, or when
	// ctx is cancelled; the stream is never half-closed.
	return end(stream.RecvMsg(new(mediagwv1.UploadResponse)))
}

// trickleREST POSTs a 20 MiB body at rate bytes per second until the
// server answers or the bench cancels ctx.
func trickleREST(ctx context.Context, hc *http.Client, url string, rate int, t0 time.Time) slowEnd {
	body := &trickle{ctx: ctx, g: newGen(starveDeclared), piece: max(1, rate/10), every: 100 * time.Millisecond}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/media:upload?media_type=video%2Fmp4", body)
	e := slowEnd{}
	if err == nil {
		req.ContentLength = starveDeclared
		req.Header.Set("Content-Type", "video/mp4")
		var resp *http.Response
		if resp, err = hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			e.key = fmt.Sprintf("rest HTTP %d", resp.StatusCode)
		}
	}
	e.after, e.byServer = time.Since(t0), ctx.Err() == nil
	switch {
	case err == nil:
	case !e.byServer:
		e.key = "rest stopped by the bench"
	default:
		e.key = "rest transport error"
	}
	return e
}

// trickle is a request body that yields piece bytes every period.
type trickle struct {
	ctx   context.Context
	g     *gen
	piece int
	every time.Duration
	next  time.Time
}

func (t *trickle) Read(p []byte) (int, error) {
	if t.g.remaining() == 0 {
		return 0, io.EOF
	}
	if wait := time.Until(t.next); wait > 0 {
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-t.ctx.Done():
			tm.Stop()
			return 0, t.ctx.Err()
		}
	}
	t.next = time.Now().Add(t.every)
	return t.g.Read(p[:min(len(p), t.piece)])
}
