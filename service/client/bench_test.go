package client

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// discard is a MediaUploadService whose Upload reads the stream and
// throws the bytes away: the benchmarks measure the client side alone.
type discard struct {
	mediagwv1.UnimplementedMediaUploadServiceServer
}

func (discard) Upload(s grpc.ClientStreamingServer[mediagwv1.UploadRequest, mediagwv1.UploadResponse]) error {
	var n int64
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&mediagwv1.UploadResponse{MediaId: "1", Size: n})
		}
		if err != nil {
			return err
		}
		n += int64(len(m.GetChunk()))
	}
}

// pattern yields size bytes copied from a fixed block, as a file read
// from the page cache would.
type pattern struct {
	block []byte
	left  int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	n := 0
	for n < len(b) {
		n += copy(b[n:], p.block)
	}
	p.left -= int64(n)
	return n, nil
}

// BenchmarkUpload compares an upload through Client.Upload (a plain
// Reader, no hash, no key) with a hand-written Upload stream of the same
// chunks over the same loopback connection.
func BenchmarkUpload(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	mediagwv1.RegisterMediaUploadServiceServer(srv, discard{})
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	const size = 64 << 20
	block := make([]byte, 1<<20)
	for _, copying := range []bool{false, true} {
		name := "raw-slices"
		if copying {
			name = "raw-copy"
		}
		b.Run(name, func(b *testing.B) { rawUpload(b, l.Addr().String(), block, size, copying) })
	}
	b.Run("client", func(b *testing.B) {
		c, err := New(l.Addr().String(), WithInsecure(), WithoutOTel())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(size)
		for b.Loop() {
			if _, err := c.Upload(context.Background(), Reader(&pattern{block: block, left: size}, size),
				UploadOptions{MediaType: "video/mp4", NoSHA256: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rawUpload streams size bytes in DefaultChunkSize messages by hand:
// slices of block (no copy, as cmd/bench's grpc path sends), or each
// read into a buffer of its own (as any io.Reader source needs).
func rawUpload(b *testing.B, addr string, block []byte, size int64, copying bool) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	api := mediagwv1.NewMediaUploadServiceClient(conn)
	b.SetBytes(size)
	for b.Loop() {
		st, err := api.Upload(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		_ = st.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: size}}})
		r := &pattern{block: block, left: size}
		for off := int64(0); off < size; off += DefaultChunkSize {
			n := min(size-off, DefaultChunkSize)
			var chunk []byte
			if copying {
				chunk = make([]byte, n)
				_, _ = io.ReadFull(r, chunk)
			} else {
				in := off % int64(len(block))
				chunk = block[in:min(in+n, int64(len(block)))]
			}
			_ = st.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: chunk}})
		}
		if _, err := st.CloseAndRecv(); err != nil {
			b.Fatal(err)
		}
	}
}
