package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/grpcapi"
)

// chunkSize is the size of the Upload messages: 32 KiB less gRPC's
// framing (32752 bytes), the size mediagw recommends.
const chunkSize = 32<<10 - 16

// client is mediagw's API as the commands use it, over gRPC or REST. Its
// errors are gRPC status errors (REST problems are converted), so that
// one set of rules decides what is retried.
type client interface {
	// Upload sends start and then body, the media from start's
	// resume_offset on; sent is told of every chunk handed to the
	// transport.
	Upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(n int)) (*mediagwv1.UploadResponse, error)
	GetUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error)
	GetStatus(ctx context.Context, mediaID string) (*mediagwv1.ProcessingStatus, error)
	// WatchStatus calls each for every state until the stream ends.
	WatchStatus(ctx context.Context, mediaID string, each func(*mediagwv1.ProcessingStatus)) error
	Close() error
}

// localError is a failure on this side (reading the file): it is never
// retried.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// credentialsFrom reads the bearer token and the X user token. Files are
// read on every call, so a rotated token is picked up by the next retry.
type credentialsFrom struct{ o *connOptions }

func (c credentialsFrom) bearer() (string, error) {
	if c.o.TokenFile != "" {
		return readToken(c.o.TokenFile, "--token-file")
	}
	return c.o.Token, nil
}

func (c credentialsFrom) xToken() (string, error) {
	if c.o.XAccessTokenFile != "" {
		return readToken(c.o.XAccessTokenFile, "--x-access-token-file")
	}
	return "", nil
}

func readToken(path, flagName string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &localError{fmt.Errorf("%s: %w", flagName, err)}
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", &localError{fmt.Errorf("%s: %s is empty", flagName, path)}
	}
	return t, nil
}

// tlsConfig builds the client TLS configuration from --cacert, --cert
// and --key.
func tlsConfig(o *connOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", o.CACert)
		}
		cfg.RootCAs = pool
	}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// newClient connects to mediagw as the options say.
func newClient(o *connOptions) (client, error) {
	if o.REST {
		return newRESTClient(o)
	}
	creds := insecure.NewCredentials()
	if o.useTLS() {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(o.Server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", o.Server, err)
	}
	return &grpcClient{conn: conn, svc: mediagwv1.NewMediaUploadServiceClient(conn), creds: credentialsFrom{o}}, nil
}

type grpcClient struct {
	conn  *grpc.ClientConn
	svc   mediagwv1.MediaUploadServiceClient
	creds credentialsFrom
}

func (c *grpcClient) Close() error { return c.conn.Close() }

// outgoing adds the caller's tokens to ctx as call metadata.
func (c *grpcClient) outgoing(ctx context.Context) (context.Context, error) {
	b, err := c.creds.bearer()
	if err != nil {
		return nil, err
	}
	x, err := c.creds.xToken()
	if err != nil {
		return nil, err
	}
	var kv []string
	if b != "" {
		kv = append(kv, "authorization", "Bearer "+b)
	}
	if x != "" {
		kv = append(kv, grpcapi.TokenMetadataKey, x)
	}
	if len(kv) == 0 {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, kv...), nil
}

func (c *grpcClient) Upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.svc.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: start}}); err != nil {
		// The server ended the call (or answered at once, as it does for
		// a completed key): its status or response says which.
		return stream.CloseAndRecv()
	}
	for {
		// A message must not change after Send: each gets its own buffer.
		buf := make([]byte, chunkSize)
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			if err := stream.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				return stream.CloseAndRecv()
			}
			sent(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			cancel()
			return nil, &localError{fmt.Errorf("reading the file: %w", rerr)}
		}
	}
	return stream.CloseAndRecv()
}

func (c *grpcClient) GetUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.GetUpload(ctx, &mediagwv1.GetUploadRequest{IdempotencyKey: key})
}

func (c *grpcClient) GetStatus(ctx context.Context, id string) (*mediagwv1.ProcessingStatus, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.GetStatus(ctx, &mediagwv1.GetStatusRequest{MediaId: id})
}

func (c *grpcClient) WatchStatus(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) error {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return err
	}
	stream, err := c.svc.WatchStatus(ctx, &mediagwv1.WatchStatusRequest{MediaId: id})
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

// uploadStateOf returns the UploadState a status error carries as a
// detail (mediagw attaches it to an interrupted upload and to a
// resume_offset that is not the committed length).
func uploadStateOf(err error) (*mediagwv1.UploadState, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	for _, d := range st.Details() {
		if us, ok := d.(*mediagwv1.UploadState); ok {
			return us, true
		}
	}
	return nil, false
}

// codeOf returns the gRPC code of err; errors that are not status errors
// are Unknown, except context errors.
func codeOf(err error) codes.Code {
	if errors.Is(err, context.Canceled) {
		return codes.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return codes.DeadlineExceeded
	}
	return status.Code(err)
}
