package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"google.golang.org/grpc"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// The gRPC hop is the physical reference of mediagw's gRPC path: a plain
// grpc-go server (the default codec, the windows mediagw uses) that
// receives an Upload stream and discards its chunks. What it costs to
// receive the bytes is what any grpc-go service pays before doing
// anything with them.

// roleGRPCDiscard is the bench -serve role of the gRPC hop's server.
const roleGRPCDiscard = "grpcdiscard"

// Flow-control windows and message size of the gRPC hop, as mediagw's.
const (
	grpcHopStreamWindow = 256 << 10
	grpcHopConnWindow   = 8 << 20
	grpcHopMaxMessage   = 4<<20 + 16
)

type grpcDiscard struct {
	mediagwv1.UnimplementedMediaUploadServiceServer
}

func (grpcDiscard) Upload(stream grpc.ClientStreamingServer[mediagwv1.UploadRequest, mediagwv1.UploadResponse]) error {
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&mediagwv1.UploadResponse{MediaId: "1", Size: n})
		}
		if err != nil {
			return err
		}
		n += int64(len(msg.GetChunk()))
	}
}

// serveGRPCDiscard runs the gRPC hop's server until ctx ends.
func serveGRPCDiscard(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(grpcHopMaxMessage),
		grpc.InitialWindowSize(grpcHopStreamWindow), grpc.InitialConnWindowSize(grpcHopConnWindow))
	mediagwv1.RegisterMediaUploadServiceServer(s, grpcDiscard{})
	fmt.Fprintf(os.Stdout, "bench-%s listening on %s\n", roleGRPCDiscard, l.Addr())
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	return s.Serve(l)
}

// grpcHopClient uploads through the gRPC hop and checks the byte count it
// answers (there is no X to verify against).
type grpcHopClient struct{ c *grpcClient }

func (h *grpcHopClient) upload(ctx context.Context, g *gen) upload {
	u := h.c.upload(ctx, g)
	u.selfChecked = true
	if u.err == nil && u.answered != g.size {
		u.err = fmt.Errorf("gRPC discard server read %d bytes, sent %d", u.answered, g.size)
	}
	return u
}
