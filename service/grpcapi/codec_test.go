package grpcapi

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rawCodec sends bytes as they are: a client that sends what protobuf
// cannot decode.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return nil }

// serve runs a gRPC server with the codec and guard on a bufconn and
// returns a client connection speaking raw bytes.
func serve(t *testing.T, c *codec, guard ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(c.serverOptions(guard...)...)
	mediagwv1.RegisterMediaUploadServiceServer(srv, mediagwv1.UnimplementedMediaUploadServiceServer{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func pending(c *codec) int {
	n := 0
	c.bad.Range(func(any, any) bool { n++; return true })
	return n
}

// malformed is a GetStatusRequest whose media_id is not UTF-8.
var malformed = []byte{0x0a, 0x02, 0xff, 0xfe}

// TestStrangersLeaveNothing: unary requests that fail to decode, sent by
// callers authentication refuses, leave no entry behind (they used to stay
// in the codec's map forever).
func TestStrangersLeaveNothing(t *testing.T) {
	c := newCodec()
	refuse := grpc.ChainUnaryInterceptor(func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		return nil, status.Error(codes.Unauthenticated, "no")
	})
	conn := serve(t, c, refuse)
	for range 200 {
		var out []byte
		err := conn.Invoke(context.Background(), "/mediagw.v1.MediaUploadService/GetStatus", malformed, &out)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("a stranger's malformed request: %v, want Unauthenticated", err)
		}
	}
	if n := pending(c); n != 0 {
		t.Fatalf("%d failed decodes are still held after 200 refused calls", n)
	}
}

// TestMalformedIsInvalidArgument: an authenticated caller's malformed
// request is InvalidArgument naming the field, and leaves nothing behind.
func TestMalformedIsInvalidArgument(t *testing.T) {
	c := newCodec()
	conn := serve(t, c)
	var out []byte
	err := conn.Invoke(context.Background(), "/mediagw.v1.MediaUploadService/GetStatus", malformed, &out)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "media_id") {
		t.Fatalf("malformed request: %v", err)
	}
	if n := pending(c); n != 0 {
		t.Fatalf("%d failed decodes are still held", n)
	}
}
