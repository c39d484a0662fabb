package client

import (
	"sync"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec chunkCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// An Upload stream's chunk messages are encoded without copying their
// bytes: the source is read straight into a pooled buffer, and the
// stream's codec hands gRPC that buffer, the message's protobuf header
// (tag and length) written in the room left before the chunk, instead of
// marshalling the message into a second buffer. The transport frees the
// buffer once written and it returns to the pool; it is never written
// again while gRPC holds it. The bytes on the wire are protobuf's own
// encoding of the message.

// uploadChunkField is UploadRequest.chunk's field number.
const uploadChunkField = 2

// chunkPool is a mem.BufferPool of chunk-sized buffers. Unlike gRPC's
// public pools it does not clear a buffer it hands out: every byte of a
// chunk buffer that is sent was read from the source first.
type chunkPool struct {
	size int
	pool sync.Pool
}

func newChunkPool(size int) *chunkPool { return &chunkPool{size: size} }

// Get returns a buffer of n bytes, n at most the pool's size.
func (p *chunkPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, p.size)
	return &b
}

// Put takes a buffer back; buffers of another capacity are dropped.
func (p *chunkPool) Put(b *[]byte) {
	if cap(*b) == p.size {
		p.pool.Put(b)
	}
}

// chunkCodec is the codec of one Upload stream: protobuf's, except for
// the chunk message whose encoding set prepared.
type chunkCodec struct {
	base encoding.CodecV2
	pool mem.BufferPool           // buffers of len(full)+size bytes
	full []byte                   // the header of a chunk of the stream's chunk size
	size int                      // the stream's chunk size
	msg  *mediagwv1.UploadRequest // the message enc encodes
	data []byte                   // its chunk, as set
	enc  mem.BufferSlice          // header and chunk, until taken
}

// newChunkCodec returns the codec of a stream of chunks of size bytes;
// pool's buffers must hold chunkRoom(size) bytes.
func newChunkCodec(size int, pool mem.BufferPool) *chunkCodec {
	return &chunkCodec{base: encoding.GetCodecV2("proto"), pool: pool, full: chunkHeader(size), size: size}
}

// chunkRoom is the size of the buffer of a chunk of size bytes: the
// chunk behind the room for its header.
func chunkRoom(size int) int { return len(chunkHeader(size)) + size }

// chunkHeader returns the protobuf header of a chunk field of n bytes.
func chunkHeader(n int) []byte {
	h := protowire.AppendTag(make([]byte, 0, 2*binaryVarintLen), uploadChunkField, protowire.BytesType)
	return protowire.AppendVarint(h, uint64(n))
}

// binaryVarintLen is the longest varint.
const binaryVarintLen = 10

func (c *chunkCodec) Name() string { return c.base.Name() }

// buffer returns a pooled buffer and its part a chunk is to be read into.
func (c *chunkCodec) buffer() (*[]byte, []byte) {
	p := c.pool.Get(len(c.full) + c.size)
	return p, (*p)[len(c.full):]
}

// set makes the first n bytes read into buffer p (n > 0; m's chunk is
// those very bytes) the encoding of m for its next Marshal. The codec
// owns p until the encoding is taken or dropped.
func (c *chunkCodec) set(m *mediagwv1.UploadRequest, p *[]byte, n int) {
	c.drop()
	room := len(c.full)
	*p = (*p)[:room+n]
	var buf mem.Buffer
	if n == c.size {
		copy(*p, c.full)
		buf = mem.NewBuffer(p, c.pool)
	} else {
		// A shorter chunk (the last) may have a shorter header: it ends
		// where the chunk starts, and the buffer is sliced to it.
		hdr := chunkHeader(n)
		at := room - len(hdr)
		copy((*p)[at:], hdr)
		whole := mem.NewBuffer(p, c.pool)
		buf = whole.Slice(at, room+n)
		whole.Free()
	}
	c.msg, c.data, c.enc = m, (*p)[room:room+n], mem.BufferSlice{buf}
}

// drop frees a prepared encoding that was not taken.
func (c *chunkCodec) drop() {
	if c.enc != nil {
		c.enc.Free()
	}
	c.msg, c.data, c.enc = nil, nil, nil
}

// Marshal returns the prepared encoding of the message set named, if the
// message still holds that very chunk, and protobuf's otherwise.
func (c *chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*mediagwv1.UploadRequest); ok && c.enc != nil && m == c.msg {
		if ch := m.GetChunk(); len(ch) == len(c.data) && &ch[0] == &c.data[0] {
			enc := c.enc
			c.msg, c.data, c.enc = nil, nil, nil
			return enc, nil
		}
	}
	return c.base.Marshal(v)
}

func (c *chunkCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.base.Unmarshal(data, v) }
