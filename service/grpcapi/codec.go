package grpcapi

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/mediagw/mediagw/service/apierr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the default codec this one wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ServerOptions are the gRPC server options the service needs: its codec
// (Upload chunks are read in place from the transport's buffers, and a
// request that is not valid protobuf is INVALID_ARGUMENT, not INTERNAL)
// and the interceptors that report such requests, around guard (the
// authentication interceptors): nothing but the codec's bookkeeping runs
// before them, and a stranger's malformed request is refused as a
// stranger's.
func ServerOptions(guard ...grpc.ServerOption) []grpc.ServerOption {
	return newCodec().serverOptions(guard...)
}

func newCodec() *codec { return &codec{base: encoding.GetCodecV2("proto")} }

func (c *codec) serverOptions(guard ...grpc.ServerOption) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.ForceServerCodecV2(c), grpc.ChainUnaryInterceptor(c.take)}
	opts = append(opts, guard...)
	return append(opts, grpc.ChainUnaryInterceptor(c.unary), grpc.ChainStreamInterceptor(c.stream))
}

// codec is gRPC's protobuf codec with two changes on the receiving side.
//
// An UploadRequest that holds only a chunk (every message of an upload
// but the first) is not copied: the frame keeps references to the
// transport's buffers and its pieces point into them, so each media byte
// is copied once, into its segment buffer, instead of being joined across
// HTTP/2 frames and copied again by protobuf.
//
// A message that does not decode is not an error to gRPC (which would
// answer INTERNAL for it): the codec remembers the message, and the
// interceptors answer INVALID_ARGUMENT with protobuf's reason, which names
// the field.
type codec struct {
	base encoding.CodecV2
	bad  sync.Map // message → error, for messages that failed to decode
}

func (c *codec) Name() string { return c.base.Name() }

func (c *codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*frame); ok {
		f.decode(data)
		return nil
	}
	if err := c.base.Unmarshal(data, v); err != nil {
		if m, ok := v.(proto.Message); ok {
			err = explainDecode(m, data.Materialize(), err)
			proto.Reset(m)
		}
		c.bad.Store(v, err)
	}
	return nil
}

// explainDecode names the field of a message that protobuf refused for
// holding a string that is not UTF-8 (protobuf's own error does not).
func explainDecode(m proto.Message, b []byte, err error) error {
	if name := badUTF8(m.ProtoReflect().Descriptor(), b); name != "" {
		return fmt.Errorf("field %s is not valid UTF-8", name)
	}
	return err
}

// badUTF8 returns the name of the first string field in b (a message of
// md, nested messages included) that is not UTF-8, or "".
func badUTF8(md protoreflect.MessageDescriptor, b []byte) string {
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return ""
			}
			if fd := fields.ByNumber(num); fd != nil {
				switch {
				case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
					return string(fd.Name())
				case fd.Kind() == protoreflect.MessageKind:
					if name := badUTF8(fd.Message(), v); name != "" {
						return string(fd.Name()) + "." + name
					}
				}
			}
			b = b[k:]
			continue
		}
		k := protowire.ConsumeFieldValue(num, typ, b)
		if k < 0 {
			return ""
		}
		b = b[k:]
	}
	return ""
}

// check reports a message that failed to decode.
func (c *codec) check(m any) error {
	if err, ok := c.bad.LoadAndDelete(m); ok {
		return status.Errorf(codes.InvalidArgument, "the request is not a valid message: %v", err)
	}
	return nil
}

// decodeErrKey carries a unary request's decoding failure from take to
// unary.
type decodeErrKey struct{}

// take is the outermost unary interceptor: a unary request is decoded
// before any interceptor runs, so its failure is taken out of the map here,
// whatever the interceptors after it decide (a refused stranger's entry
// would otherwise stay forever), and carried in the context to unary.
func (c *codec) take(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.check(req); err != nil {
		ctx = context.WithValue(ctx, decodeErrKey{}, err)
	}
	return h(ctx, req)
}

// unary answers a request that failed to decode, once the caller was
// authenticated.
func (c *codec) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err, _ := ctx.Value(decodeErrKey{}).(error); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (c *codec) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, checkedStream{ServerStream: ss, c: c})
}

// checkedStream reports messages of a stream that failed to decode.
type checkedStream struct {
	grpc.ServerStream
	c *codec
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.c.check(m)
}

// uploadChunkField is UploadRequest.chunk's field number.
const uploadChunkField = 2

// decode reads an UploadRequest. A message that is a single chunk field
// keeps data (referenced) and points pieces into it; anything else (the
// start message, unknown fields) is decoded by protobuf from a copy.
func (f *frame) decode(data mem.BufferSlice) {
	total := data.Len()
	var hdr [binaryVarintMax + 2]byte
	n := 0
	for _, b := range data {
		n += copy(hdr[n:], b.ReadOnlyData())
		if n == len(hdr) {
			break
		}
	}
	num, typ, tagLen := protowire.ConsumeTag(hdr[:n])
	if tagLen > 0 && num == uploadChunkField && typ == protowire.BytesType {
		size, lenLen := protowire.ConsumeVarint(hdr[tagLen:n])
		if lenLen > 0 && uint64(tagLen+lenLen)+size == uint64(total) {
			data.Ref()
			f.data = append(mem.BufferSlice(nil), data...)
			skip := tagLen + lenLen
			f.size = int(size)
			for _, b := range data {
				p := b.ReadOnlyData()
				if skip >= len(p) {
					skip -= len(p)
					continue
				}
				f.pieces = append(f.pieces, p[skip:])
				skip = 0
			}
			return
		}
	}
	buf := data.Materialize()
	if err := proto.Unmarshal(buf, f.UploadRequest); err != nil {
		f.err = apierr.Invalidf("the message is not a valid mediagw.v1.UploadRequest: %v", explainDecode(f.UploadRequest, buf, err))
		return
	}
	f.settle()
}

// binaryVarintMax is the longest varint.
const binaryVarintMax = 10
