package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// xTokenMetadata is the metadata key of the X user token.
const xTokenMetadata = "x-access-token"

type grpcTransport struct {
	conn   *grpc.ClientConn
	svc    mediagwv1.MediaUploadServiceClient
	tokens oauth2.TokenSource
	chunk  int
	pool   *chunkPool // the chunk buffers of Upload messages
	certs  *certWatch
}

func newGRPC(target string, cfg *config) (*grpcTransport, error) {
	if target == "" {
		return nil, errors.New("no mediagw target given")
	}
	creds := insecure.NewCredentials()
	var certs *certWatch
	if !cfg.insecure {
		tc := cfg.tlsConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		certs = &certWatch{}
		creds = credentials.NewTLS(certs.wrap(tc))
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if !cfg.noOTel {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(cfg.otel...)))
	}
	opts = append(opts, cfg.dialOptions...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("mediagw target %s: %w", target, err)
	}
	return &grpcTransport{conn: conn, svc: mediagwv1.NewMediaUploadServiceClient(conn), tokens: cfg.tokens, chunk: cfg.chunk,
		pool: newChunkPool(chunkRoom(cfg.chunk)), certs: certs}, nil
}

func (g *grpcTransport) close() error { return g.conn.Close() }

// outgoing adds the caller's tokens to ctx as call metadata.
func (g *grpcTransport) outgoing(ctx context.Context) (context.Context, error) {
	b, err := bearer(g.tokens)
	if err != nil {
		return nil, localError(err, "")
	}
	x, err := xToken(ctx)
	if err != nil {
		return nil, localError(err, "")
	}
	var kv []string
	if b != "" {
		kv = append(kv, "authorization", "Bearer "+b)
	}
	if x != "" {
		kv = append(kv, xTokenMetadata, x)
	}
	if len(kv) == 0 {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, kv...), nil
}

func (g *grpcTransport) upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	codec := newChunkCodec(g.chunk, g.pool)
	defer codec.drop()
	stream, err := g.svc.Upload(ctx, grpc.ForceCodecV2(codec))
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: start}}); err != nil {
		// The server ended the call (or answered at once, as it does for
		// a completed key): its status or response says which.
		return stream.CloseAndRecv()
	}
	// Each chunk is read into a pooled buffer that becomes the message's
	// encoding as it is (see chunkCodec); the message itself is reused,
	// as gRPC is done with it when Send returns.
	chunk := &mediagwv1.UploadRequest_Chunk{}
	msg := &mediagwv1.UploadRequest{Payload: chunk}
	for {
		p, room := codec.buffer()
		n, rerr := io.ReadFull(body, room)
		if n > 0 {
			chunk.Chunk = room[:n]
			codec.set(msg, p, n)
			err := stream.Send(msg)
			chunk.Chunk = nil
			codec.drop()
			if err != nil {
				return stream.CloseAndRecv()
			}
			sent(n)
		} else {
			g.pool.Put(p)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return nil, rerr
		}
	}
	return stream.CloseAndRecv()
}

func (g *grpcTransport) getUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.GetUpload(ctx, &mediagwv1.GetUploadRequest{IdempotencyKey: key})
}

func (g *grpcTransport) getStatus(ctx context.Context, id string) (*mediagwv1.ProcessingStatus, error) {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return g.svc.GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: id})
}

func (g *grpcTransport) watch(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) error {
	ctx, err := g.outgoing(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := g.svc.WatchStatus(ctx, &mediagwv1.WatchStatusRequest{MediaId: id})
	if err != nil {
		return err
	}
	for {
		st, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		each(st)
	}
}
