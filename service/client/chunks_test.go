package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// countingPool is a mem.BufferPool that tells which of its buffers are
// out.
type countingPool struct {
	mu  sync.Mutex
	out map[*[]byte]bool
}

func (p *countingPool) Get(n int) *[]byte {
	b := make([]byte, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out[&b] = true
	return &b
}

func (p *countingPool) Put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.out[b] {
		panic("a buffer that is not out was put back")
	}
	delete(p.out, b)
}

func (p *countingPool) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.out)
}

// TestChunkEncoding: a prepared chunk message encodes to protobuf's own
// bytes, in the very buffer the chunk was read into, whose buffer goes
// back to the pool only once the encoding is freed; any other message,
// or one whose chunk was replaced, is marshalled by protobuf.
func TestChunkEncoding(t *testing.T) {
	for _, size := range []int{1, 127, 128, 1000, 16383, 16384, DefaultChunkSize, 1<<20 + 5} {
		for _, n := range []int{size, size - 1, 127, 128, 1} {
			if n < 1 || n > size {
				continue
			}
			pool := &countingPool{out: map[*[]byte]bool{}}
			c := newChunkCodec(size, pool)
			p, room := c.buffer()
			if len(room) != size {
				t.Fatalf("size %d: room for %d bytes", size, len(room))
			}
			for i := range room[:n] {
				room[i] = byte(i*7 + n)
			}
			m := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: room[:n]}}
			c.set(m, p, n)
			enc, err := c.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			want, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got := enc.Materialize()
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d, chunk %d: encoded % x…, protobuf % x…", size, n, got[:min(8, len(got))], want[:min(8, len(want))])
			}
			last := enc[len(enc)-1].ReadOnlyData()
			if &last[len(last)-1] != &room[n-1] {
				t.Fatalf("size %d, chunk %d: the encoding is not the buffer the chunk was read into", size, n)
			}
			if pool.outstanding() != 1 {
				t.Fatalf("size %d, chunk %d: %d buffers out while the encoding is held, want 1", size, n, pool.outstanding())
			}
			c.drop() // the encoding was taken: dropping frees nothing
			if pool.outstanding() != 1 {
				t.Fatalf("size %d, chunk %d: drop freed an encoding gRPC holds", size, n)
			}
			enc.Free()
			if pool.outstanding() != 0 && cap(*p) > 1024 {
				// Below gRPC's pooling threshold a buffer is never put back.
				t.Fatalf("size %d, chunk %d: the buffer was not put back", size, n)
			}
		}
	}

	pool := &countingPool{out: map[*[]byte]bool{}}
	c := newChunkCodec(DefaultChunkSize, pool)
	p, room := c.buffer()
	copy(room, "prepared")
	m := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: room[:8]}}
	c.set(m, p, 8)
	other := &mediagwv1.UploadRequest{Payload: &mediagwv1.UploadRequest_Chunk{Chunk: []byte("another")}}
	m.Payload = &mediagwv1.UploadRequest_Chunk{Chunk: []byte("replaced")}
	for _, v := range []*mediagwv1.UploadRequest{other, m} {
		enc, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(v)
		if got := enc.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("%q encoded as % x, want % x", v.GetChunk(), got, want)
		}
		enc.Free()
	}
	c.drop()
	if pool.outstanding() != 0 {
		t.Fatal("a prepared encoding that was never taken was not put back")
	}
}

// hashing is a MediaUploadService decoded by gRPC's stock protobuf codec
// whose Upload answers with the number of chunk bytes and their SHA-256
// (hex, as the media id).
type hashing struct {
	mediagwv1.UnimplementedMediaUploadServiceServer
}

func (hashing) Upload(s grpc.ClientStreamingServer[mediagwv1.UploadRequest, mediagwv1.UploadResponse]) error {
	h := sha256.New()
	var n int64
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&mediagwv1.UploadResponse{MediaId: hex.EncodeToString(h.Sum(nil)), Size: n})
		}
		if err != nil {
			return err
		}
		h.Write(m.GetChunk())
		n += int64(len(m.GetChunk()))
	}
}

// TestChunksReachStockServer: uploads of chunk sizes below and above
// gRPC's pooling threshold, ending in a short chunk, arrive byte-exact at
// a server that decodes them with gRPC's own protobuf codec.
func TestChunksReachStockServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	mediagwv1.RegisterMediaUploadServiceServer(srv, hashing{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { srv.Stop(); <-done }()
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i ^ i>>9)
	}
	want := sha256.Sum256(data)
	for _, chunk := range []int{200, 1000, DefaultChunkSize, 1 << 20} {
		c, err := New(l.Addr().String(), WithInsecure(), WithoutOTel(), WithChunkSize(chunk))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Upload(context.Background(), Reader(bytes.NewBuffer(data), int64(len(data))),
			UploadOptions{MediaType: "video/mp4"})
		c.Close()
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if res.Response.GetSize() != int64(len(data)) || res.Response.GetMediaId() != hex.EncodeToString(want[:]) {
			t.Fatalf("chunk %d: the server got %d bytes of another SHA-256, want %d", chunk, res.Response.GetSize(), len(data))
		}
	}
}
