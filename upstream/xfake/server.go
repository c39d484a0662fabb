package xfake

import (
	"cmp"
	"io"
	"net/http"
	"sync"
	"time"
)

// Server is the emulator. It implements [http.Handler]; create it with
// [New] and release it with [Server.Close].
type Server struct {
	opts      Options
	mux       *http.ServeMux
	store     *store
	storeErr  error
	limiter   *limiter
	tokens    *tokens
	idRand    *lockedRand
	faultRand *lockedRand

	closed    chan struct{}
	closeOnce sync.Once
	janitor   sync.WaitGroup

	statsMu     sync.Mutex
	requests    map[string]int64
	faults      map[FaultKind]int64
	rateLimited int64
}

var _ http.Handler = (*Server)(nil)

// New returns an emulator configured by opts; zero fields take the defaults
// documented on [Options].
func New(opts Options) *Server {
	o := opts.withDefaults()
	seed := uint64(o.Seed)
	if o.Seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Server{
		opts:      o,
		mux:       http.NewServeMux(),
		limiter:   newLimiter(o.RateLimits, o.Now),
		tokens:    newTokens(o),
		idRand:    newLockedRand(seed, 1),
		faultRand: newLockedRand(seed, 2),
		closed:    make(chan struct{}),
		requests:  map[string]int64{},
		faults:    map[FaultKind]int64{},
	}
	s.store, s.storeErr = newStore(o.SpillDir, o.Now, o.ProcessingTime)
	if s.storeErr != nil {
		o.Logger.Error("xfake: cannot create spill directory", "err", s.storeErr)
	}
	s.routes()
	if s.store != nil {
		s.janitor.Add(1)
		go s.sweepLoop()
	}
	return s
}

func (s *Server) routes() {
	s.mux.Handle("POST /2/media/upload/initialize", s.upload(dialV2, keyInit, s.v2Init))
	s.mux.Handle("POST /2/media/upload/{id}/append", s.upload(dialV2, keyAppend, s.v2Append))
	s.mux.Handle("POST /2/media/upload/{id}/finalize", s.upload(dialV2, keyFinalize, s.v2Finalize))
	s.mux.Handle("GET /2/media/upload", s.upload(dialV2, keyStatus, s.v2Status))
	s.mux.Handle("POST /2/media/upload", s.upload(dialCmd, "v2-command", s.command))
	s.mux.Handle("/1.1/media/upload.json", s.upload(dialV11, "v1.1", s.command))
	s.mux.Handle("POST /2/media/metadata", s.upload(dialV2, keyMetadata, s.v2Metadata))
	s.mux.Handle("POST /2/media/subtitles", s.upload(dialV2, keySubtitles, s.v2SubtitlesCreate))
	s.mux.Handle("DELETE /2/media/subtitles", s.upload(dialV2, keySubtitles, s.v2SubtitlesDelete))
	s.mux.Handle("GET /2/media/{media_key}", s.upload(dialV2, keyLookup, s.v2Lookup))
	s.mux.Handle("POST /1.1/media/metadata/create.json", s.upload(dialV11, keyV11Metadata, s.v11Metadata))
	s.mux.Handle("POST /1.1/media/subtitles/create.json", s.upload(dialV11, keyV11Subtitles, s.v11SubtitlesCreate))
	s.mux.Handle("POST /1.1/media/subtitles/delete.json", s.upload(dialV11, keyV11Subtitles, s.v11SubtitlesDelete))
	s.mux.HandleFunc("POST /2/oauth2/token", s.handleToken)
	s.mux.HandleFunc("GET /i/oauth2/authorize", s.handleAuthorize)
	s.mux.HandleFunc("GET /_xfake/media/{id}", s.handleInspect)
	s.mux.HandleFunc("GET /_xfake/stats", s.handleStats)
}

// ServeHTTP serves the emulated endpoints; see the package documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close removes every spilled file, ends stalled requests and stops the
// janitor. The server answers no upload after Close.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.janitor.Wait()
	if s.store == nil {
		return s.storeErr
	}
	return s.store.close()
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// sweepLoop deletes expired media (and their spilled files) periodically;
// expiry is also applied lazily on every lookup.
func (s *Server) sweepLoop() {
	defer s.janitor.Done()
	every := min(s.opts.SessionTTL, s.opts.MediaTTL) / 2
	every = min(max(every, 50*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.store.sweep()
			s.limiter.prune()
		}
	}
}

// dialect selects the wire shapes of an endpoint.
type dialect int

const (
	dialV2  dialect = iota // dedicated endpoints and GET status
	dialCmd                // POST /2/media/upload command=...
	dialV11                // /1.1/media/upload.json
)

// exchange is one upload or status request on its way through the pipeline.
type exchange struct {
	s       *Server
	r       *http.Request
	id      identity
	dialect dialect
	key     string // rate-limit key, once the operation is known
	quota   quota
}

// limit takes one request from the window of key; it returns the 429
// answer when the window is exhausted.
func (x *exchange) limit(key string) *response {
	x.key = key
	x.quota = x.s.limiter.take(x.id.token, key)
	if x.quota.ok {
		return nil
	}
	x.s.statsMu.Lock()
	x.s.rateLimited++
	x.s.statsMu.Unlock()
	if x.dialect == dialV11 {
		return codeError(http.StatusTooManyRequests, 88, "Rate limit exceeded")
	}
	return problemResponse(http.StatusTooManyRequests)
}

// upload wraps an endpoint handler with the emulator's pipeline: latency,
// authentication, a fault before or after the handler, rate-limit headers.
func (s *Server) upload(d dialect, key string, h func(*exchange) *response) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &exchange{s: s, r: r, dialect: d}
		if d == dialV2 {
			x.key = key
		}
		defer func() {
			s.count(cmp.Or(x.key, key))
		}()
		if !s.sleep(r, s.opts.Latency) {
			return
		}
		x.id = s.authenticate(r)
		if resp := x.authFailure(); resp != nil {
			s.finish(w, x, resp, start)
			return
		}
		plan := s.decideFault()
		if plan != nil && !plan.after {
			s.inject(w, r, plan.kind, d == dialV11)
			return
		}
		var resp *response
		switch {
		case s.store == nil:
			resp = internalError500V2()
		case s.isClosed():
			resp = problemResponse(http.StatusServiceUnavailable)
		default:
			resp = h(x)
		}
		if plan != nil {
			s.inject(w, r, plan.kind, d == dialV11)
			return
		}
		s.finish(w, x, resp, start)
	})
}

// authFailure is the answer to an unauthenticated request, or nil. v1.1
// accepts only OAuth 1.0a user context: a bearer token there is 403.
func (x *exchange) authFailure() *response {
	if x.dialect == dialV11 {
		switch x.id.scheme {
		case authBearer:
			return codeError(http.StatusForbidden, 220, "Your credentials do not allow access to this resource.")
		case authNone:
			return codeError(http.StatusUnauthorized, 32, "Could not authenticate you.")
		}
		return nil
	}
	if x.id.token == "" {
		return problemResponse(http.StatusUnauthorized)
	}
	if x.id.scheme == authBearer && !hasScope(x.id.scope, scopeMediaWrite) {
		return problemResponse(http.StatusForbidden) // v2_08: a user token without media.write
	}
	return nil
}

// finish writes resp with the rate-limit headers of the exchange. A body
// the handler left unread is drained (bounded) first, so that a client still
// sending gets the answer instead of a broken pipe.
func (s *Server) finish(w http.ResponseWriter, x *exchange, resp *response, start time.Time) {
	_, _ = io.Copy(io.Discard, io.LimitReader(x.r.Body, 2*s.opts.MaxSegment+1<<20))
	x.quota.apply(resp).write(w)
	s.opts.Logger.Debug("xfake request", "method", x.r.Method, "path", x.r.URL.Path,
		"status", resp.status, "duration", time.Since(start))
}

// sleep waits d; it reports false when the client went away or the server
// closed first.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

func (s *Server) count(key string) {
	s.statsMu.Lock()
	s.requests[key]++
	s.statsMu.Unlock()
}

func (s *Server) countFault(k FaultKind) {
	s.statsMu.Lock()
	s.faults[k]++
	s.statsMu.Unlock()
}

// newID returns a snowflake-sized media id (19 digits, like X's).
func (s *Server) newID() int64 {
	const lo = 1_900_000_000_000_000_000
	return lo + s.idRand.int64N(100_000_000_000_000_000)
}
