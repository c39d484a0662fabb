package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/mediaops"
)

// WithMediaOps serves SetMetadata, AttachSubtitles, DetachSubtitles and
// GetMedia through o, and adds the actions of an upload to its status.
func (s *Server) WithMediaOps(o *mediaops.Ops) *Server {
	s.ops = o
	return s
}

var errNoOps = status.Error(codes.Unimplemented, "this mediagw does not serve media metadata, subtitles or lookups")

// withActions adds the actions of st's upload, when it named any.
func (s *Server) withActions(ctx context.Context, st *mediagwv1.ProcessingStatus) *mediagwv1.ProcessingStatus {
	if s.ops == nil || st == nil {
		return st
	}
	a := s.ops.Actions(ctx, st.GetMediaId())
	if a == nil {
		return st
	}
	// The relay shares st with other watchers: it is copied, not changed.
	out := proto.Clone(st).(*mediagwv1.ProcessingStatus)
	out.Actions = a
	return out
}

// SetMetadata implements mediagw.v1.MediaUploadService.
func (s *Server) SetMetadata(ctx context.Context, req *mediagwv1.SetMetadataRequest) (*mediagwv1.SetMetadataResponse, error) {
	if s.ops == nil {
		return nil, errNoOps
	}
	c, err := s.caller(ctx)
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	resp, err := s.ops.SetMetadata(ctx, c, req.GetMediaId(), req.GetMetadata())
	return resp, apierr.ToStatus(err)
}

// AttachSubtitles implements mediagw.v1.MediaUploadService.
func (s *Server) AttachSubtitles(ctx context.Context, req *mediagwv1.AttachSubtitlesRequest) (*mediagwv1.AttachSubtitlesResponse, error) {
	if s.ops == nil {
		return nil, errNoOps
	}
	c, err := s.caller(ctx)
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	resp, err := s.ops.AttachSubtitles(ctx, c, req)
	return resp, apierr.ToStatus(err)
}

// DetachSubtitles implements mediagw.v1.MediaUploadService.
func (s *Server) DetachSubtitles(ctx context.Context, req *mediagwv1.DetachSubtitlesRequest) (*mediagwv1.DetachSubtitlesResponse, error) {
	if s.ops == nil {
		return nil, errNoOps
	}
	c, err := s.caller(ctx)
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	resp, err := s.ops.DetachSubtitles(ctx, c, req)
	return resp, apierr.ToStatus(err)
}

// GetMedia implements mediagw.v1.MediaUploadService.
func (s *Server) GetMedia(ctx context.Context, req *mediagwv1.GetMediaRequest) (*mediagwv1.MediaInfo, error) {
	if s.ops == nil {
		return nil, errNoOps
	}
	c, err := s.caller(ctx)
	if err != nil {
		return nil, apierr.ToStatus(err)
	}
	resp, err := s.ops.GetMedia(ctx, c, req)
	return resp, apierr.ToStatus(err)
}
