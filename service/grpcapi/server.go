// Package grpcapi is mediagw's gRPC transport: mediagw.v1.MediaUploadService
// served over gRPC, a thin adapter onto the upload engine (Upload,
// GetUpload) and the status relay (GetStatus, WatchStatus). Its codec
// reads Upload chunks in place from the transport's buffers, so that each
// media byte is copied once, into its segment.
package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/engine"
	"github.com/mediagw/mediagw/service/mediaops"
	"github.com/mediagw/mediagw/service/relay"
)

// TokenMetadataKey is the gRPC metadata key through which a caller passes
// the X user token a call runs with (see engine.TokenMetadataKey).
const TokenMetadataKey = engine.TokenMetadataKey

// Server implements mediagw.v1.MediaUploadService over gRPC; the REST
// gateway serves its unary routes through it too.
type Server struct {
	mediagwv1.UnimplementedMediaUploadServiceServer

	engine *engine.Engine
	relay  *relay.Hub
	ops    *mediaops.Ops // nil: the media calls are Unimplemented (media.go)
}

var _ mediagwv1.MediaUploadServiceServer = (*Server)(nil)

// New returns the gRPC service of e and h.
func New(e *engine.Engine, h *relay.Hub) *Server {
	return &Server{engine: e, relay: h}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	mediagwv1.RegisterMediaUploadServiceServer(r, s)
}

// caller reads who calls from a call's context: the identity
// authentication established, and the X token of its x-access-token
// metadata (for REST routes served by the generated handlers, the
// gateway's header matcher forwards X-Access-Token there).
func (s *Server) caller(ctx context.Context) (backend.Caller, error) {
	return s.engine.CallerOf(ctx, metadata.ValueFromIncomingContext(ctx, TokenMetadataKey), "x-access-token metadata")
}

// statusAccess returns the caller of a status call for mediaID and the X
// credential it runs with.
func (s *Server) statusAccess(ctx context.Context, mediaID string) (backend.Auth, error) {
	if err := engine.ValidMediaID(mediaID); err != nil {
		return backend.Auth{}, err
	}
	c, err := s.caller(ctx)
	if err != nil {
		return backend.Auth{}, err
	}
	return s.engine.StatusAccess(c, mediaID)
}

// GetStatus implements mediagw.v1.MediaUploadService.
func (s *Server) GetStatus(ctx context.Context, req *mediagwv1.GetStatusRequest) (*mediagwv1.ProcessingStatus, error) {
	a, err := s.statusAccess(ctx, req.GetMediaId())
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	st, err := s.relay.Get(ctx, a, req.GetMediaId())
	return s.withActions(ctx, st), apierr.ToStatus(err)
}

// WatchStatus implements mediagw.v1.MediaUploadService.
func (s *Server) WatchStatus(req *mediagwv1.WatchStatusRequest, stream grpc.ServerStreamingServer[mediagwv1.ProcessingStatus]) error {
	ctx := stream.Context()
	a, err := s.statusAccess(ctx, req.GetMediaId())
	if err != nil {
		return apierr.ToStatus(err)
	}
	send := func(st *mediagwv1.ProcessingStatus) error { return stream.Send(s.withActions(ctx, st)) }
	return apierr.ToStatus(s.relay.Watch(ctx, a, req.GetMediaId(), send))
}

// GetUpload implements mediagw.v1.MediaUploadService.
func (s *Server) GetUpload(ctx context.Context, req *mediagwv1.GetUploadRequest) (*mediagwv1.UploadState, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	st, err := s.engine.GetUpload(ctx, c, req.GetIdempotencyKey())
	return st, apierr.ToStatus(err)
}
