package client

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// sunk is what the discarding server's codec makes of a received
// message: the length of the chunk it holds (0 for any other message),
// the bytes themselves dropped undecoded.
type sunk struct{ n int }

// sinkCodec is the discarding server's codec: received messages are
// counted, not decoded, so the server costs little next to the client
// it measures; its answer is encoded by protobuf.
type sinkCodec struct{ base encoding.CodecV2 }

func (c sinkCodec) Name() string { return c.base.Name() }

func (c sinkCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c sinkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if s, ok := v.(*sunk); ok {
		var hdr [binaryVarintLen + 1]byte
		k := 0
		for _, b := range data {
			k += copy(hdr[k:], b.ReadOnlyData())
		}
		num, typ, tagLen := protowire.ConsumeTag(hdr[:k])
		if tagLen > 0 && num == uploadChunkField && typ == protowire.BytesType {
			size, _ := protowire.ConsumeVarint(hdr[tagLen:k])
			s.n = int(size)
		}
		return nil
	}
	return c.base.Unmarshal(data, v)
}

// discardUpload is the discarding server's Upload: it reads the stream
// and answers with the number of message bytes it saw.
func discardUpload(_ any, s grpc.ServerStream) error {
	var n int64
	for {
		var m sunk
		err := s.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			return s.SendMsg(&mediagwv1.UploadResponse{MediaId: "1", Size: n})
		}
		if err != nil {
			return err
		}
		n += int64(m.n)
	}
}

// discardServer serves an Upload that throws the bytes away on a
// loopback listener: the benchmarks measure the client side.
func discardServer(b *testing.B) (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(sinkCodec{base: encoding.GetCodecV2("proto")}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: mediagwv1.MediaUploadService_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Streams:     []grpc.StreamDesc{{StreamName: "Upload", Handler: discardUpload, ClientStreams: true}},
	}, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	return l.Addr().String(), func() { srv.Stop(); <-done }
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

// benchSize is the size of one benchmarked upload.
const benchSize = 64 << 20

// messages is the number of chunk messages of one benchmarked upload.
const messages = (benchSize + DefaultChunkSize - 1) / DefaultChunkSize

// perMessage runs upload for b.Loop and reports the allocations of the
// process (client and server) per chunk message.
func perMessage(b *testing.B, upload func()) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		upload()
		n++
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*messages), "allocs/msg")
}

// BenchmarkUpload compares an upload through Client.Upload (a plain
// Reader, with and without its SHA-256) with hand-written Upload streams
// of the same chunks over the same loopback connection: slices of a
// block (no copy; cmd/bench's grpc path) and each chunk read into a
// fresh buffer (the obvious io.Reader loop). allocs/msg is the
// allocations of the whole process (client and the cheap server) per
// chunk message.
func BenchmarkUpload(b *testing.B) {
	addr, stop := discardServer(b)
	defer stop()
	block := make([]byte, 1<<20)
	for _, copying := range []bool{false, true} {
		name := "raw-slices"
		if copying {
			name = "raw-copy"
		}
		b.Run(name, func(b *testing.B) { rawUpload(b, addr, block, copying) })
	}
	for _, hash := range []bool{false, true} {
		name := "client"
		if hash {
			name = "client-sha256"
		}
		b.Run(name, func(b *testing.B) {
			c, err := New(addr, WithInsecure(), WithoutOTel())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			perMessage(b, func() {
				res, err := c.Upload(context.Background(), Reader(&pattern{block: block, left: benchSize}, benchSize),
					UploadOptions{MediaType: "video/mp4", NoSHA256: !hash})
				if err != nil {
					b.Fatal(err)
				}
				if res.Response.GetSize() != benchSize {
					b.Fatalf("the server saw %d chunk bytes, want %d", res.Response.GetSize(), benchSize)
				}
			})
		})
	}
}

// rawUpload streams benchSize bytes in DefaultChunkSize messages by
// hand: slices of block (no copy, as cmd/bench's grpc path sends), or
// each read into a buffer of its own.
func rawUpload(b *testing.B, addr string, block []byte, copying bool) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	api := mediagwv1.NewMediaUploadServiceClient(conn)
	perMessage(b, func() {
		st, err := api.Upload(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		_ = st.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Start{Start: &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: benchSize}}})
		r := &pattern{block: block, left: benchSize}
		for off := int64(0); off < benchSize; off += DefaultChunkSize {
			n := min(benchSize-off, DefaultChunkSize)
			var chunk []byte
			if copying {
				chunk = make([]byte, n)
				_, _ = io.ReadFull(r, chunk)
			} else {
				in := off % int64(len(block)-DefaultChunkSize)
				chunk = block[in : in+n]
			}
			_ = st.Send(&mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: chunk}})
		}
		if _, err := st.CloseAndRecv(); err != nil {
			b.Fatal(err)
		}
	})
}
