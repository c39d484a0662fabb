// Package rest is mediagw's REST transport: the REST API in-process, a
// thin adapter onto the upload engine and the status relay. POST
// /v1/media:upload reads a raw or multipart body straight into the
// engine's segment buffers; the watch route streams NDJSON or Server-Sent
// Events; the unary routes are grpc-gateway's generated handlers over the
// gRPC service's implementation. Every error is an RFC 7807 problem.
package rest

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/engine"
	"github.com/mediagw/mediagw/service/relay"
)

// GatewayOptions configures the REST gateway.
type GatewayOptions struct {
	// OpenAPI is the generated OpenAPI document; when set, it is served at
	// /openapi.json with the upload route and the error schema added.
	OpenAPI []byte
}

// Gateway serves the REST API in-process: every route calls the engine or
// the API directly, so a REST body goes from the HTTP connection into the
// upload engine with no gRPC hop, and a REST caller is seen as itself.
type Gateway struct {
	engine     *engine.Engine
	relay      *relay.Hub
	mux        *runtime.ServeMux
	openapiDoc []byte
}

// NewGateway returns the REST gateway of s.
//
// Routes: POST /v1/media:upload (raw body or multipart/form-data),
// GET /v1/media/{media_id}/status, GET /v1/media/{media_id}/status:watch
// (NDJSON, or Server-Sent Events with Accept: text/event-stream),
// GET /v1/uploads/{idempotency_key} and GET /openapi.json. Errors are
// RFC 7807 problem documents.
func NewGateway(api mediagwv1.MediaUploadServiceServer, e *engine.Engine, h *relay.Hub, opts GatewayOptions) (*Gateway, error) {
	g := &Gateway{engine: e, relay: h}
	g.mux = runtime.NewServeMux(
		runtime.WithErrorHandler(writeProblem),
		runtime.WithRoutingErrorHandler(routingProblem),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}),
	)
	// The generated in-process handlers serve the unary routes; the two
	// streaming routes, which they cannot serve, are registered after them
	// and so take precedence.
	if err := mediagwv1.RegisterMediaUploadServiceHandlerServer(context.Background(), g.mux, api); err != nil {
		return nil, err
	}
	if err := g.mux.HandlePath(http.MethodPost, "/v1/media:upload", g.upload); err != nil {
		return nil, err
	}
	if err := g.mux.HandlePath(http.MethodGet, "/v1/media/{media_id}/status:watch", g.watch); err != nil {
		return nil, err
	}
	if len(opts.OpenAPI) > 0 {
		doc, err := completeOpenAPI(opts.OpenAPI)
		if err != nil {
			return nil, err
		}
		g.openapiDoc = doc
		if err := g.mux.HandlePath(http.MethodGet, "/openapi.json", g.openAPI); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ServeHTTP implements http.Handler. A malformed X-Access-Token is refused
// here, before any route: a caller that sent a token never runs with
// mediagw's own credentials.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := engine.ParseToken(r.Header.Values("X-Access-Token"), "X-Access-Token header"); err != nil {
		g.fail(r.Context(), w, r, err)
		return
	}
	g.mux.ServeHTTP(w, r)
}

func (g *Gateway) openAPI(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(g.openapiDoc)
}

func (g *Gateway) fail(_ context.Context, w http.ResponseWriter, _ *http.Request, err error) {
	apierr.WriteProblem(w, err)
}

// caller reads who calls from a REST request served by the gateway
// itself: the identity the middleware established, and the X token of its
// X-Access-Token header.
func (g *Gateway) caller(r *http.Request) (backend.Caller, error) {
	return g.engine.CallerOf(r.Context(), r.Header.Values("X-Access-Token"), "X-Access-Token header")
}

// headerMatcher forwards X-Access-Token as the x-access-token metadata of
// the unary routes, and no other header: nothing a REST caller sends
// becomes metadata the service would have to distrust.
func headerMatcher(key string) (string, bool) {
	if strings.EqualFold(key, engine.TokenMetadataKey) {
		return engine.TokenMetadataKey, true
	}
	return "", false
}

// routes are the REST routes by template, with their methods (for 405's
// Allow header).
var routes = map[string]string{
	"/v1/media:upload":                  http.MethodPost,
	"/v1/media/{media_id}/status":       http.MethodGet,
	"/v1/media/{media_id}/status:watch": http.MethodGet,
	"/v1/uploads/{idempotency_key}":     http.MethodGet,
	"/openapi.json":                     http.MethodGet,
}

// Route returns the route template a REST path matches, for span names
// and metrics (the media id is not part of it), or "/*" for any other
// path.
func Route(path string) string {
	if _, ok := routes[path]; ok {
		return path
	}
	if id, ok := strings.CutPrefix(path, "/v1/uploads/"); ok && id != "" && !strings.Contains(id, "/") {
		return "/v1/uploads/{idempotency_key}"
	}
	rest, ok := strings.CutPrefix(path, "/v1/media/")
	if !ok {
		return "/*"
	}
	if id, ok := strings.CutSuffix(rest, "/status:watch"); ok && id != "" && !strings.Contains(id, "/") {
		return "/v1/media/{media_id}/status:watch"
	}
	if id, ok := strings.CutSuffix(rest, "/status"); ok && id != "" && !strings.Contains(id, "/") {
		return "/v1/media/{media_id}/status"
	}
	return "/*"
}

func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
