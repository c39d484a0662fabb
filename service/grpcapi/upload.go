package grpcapi

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/engine"
)

type uploadStream = grpc.ClientStreamingServer[mediagwv1.UploadRequest, mediagwv1.UploadResponse]

// Upload implements mediagw.v1.MediaUploadService: the gRPC transport of
// the upload engine.
func (s *Server) Upload(stream uploadStream) error {
	ctx := stream.Context()
	c, err := s.caller(ctx)
	if err != nil {
		return apierr.ToStatus(err)
	}
	b := newGRPCBody(ctx, stream, s.engine.IdleTimeout())
	defer b.close()
	resp, err := s.engine.Run(ctx, c, b)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

// grpcBody is the media of an Upload stream as an io.Reader and
// io.WriterTo. Messages are received one at a time, only when the upload
// asks for the next bytes (a stream never holds more than the message
// being copied), by a goroutine of their own so that waiting for the
// caller can end: after IdleTimeout with no message, or when the upload's
// context ends.
type grpcBody struct {
	ctx  context.Context
	idle time.Duration

	want  chan struct{} // asks the receiver for the next message
	got   chan received // its answer
	done  chan struct{} // closed by close: the receiver stops
	stop  chan struct{} // closed by interrupt: waits end
	once  sync.Once
	timer *time.Timer // idle timeout of the current wait
	cur   *frame      // message being read by Read
	piece int         // index in cur.pieces
	off   int         // offset in cur.pieces[piece]
	err   error       // sticky: the stream's end or failure
	n     int64       // media bytes delivered
}

type received struct {
	f   *frame
	err error
}

func newGRPCBody(ctx context.Context, stream grpc.ServerStream, idle time.Duration) *grpcBody {
	b := &grpcBody{
		ctx: ctx, idle: idle,
		want: make(chan struct{}), got: make(chan received), done: make(chan struct{}), stop: make(chan struct{}),
		timer: time.NewTimer(idle),
	}
	b.timer.Stop()
	go b.receive(stream)
	return b
}

// receive runs RecvMsg each time the body asks, until the stream ends or
// the body is closed.
func (b *grpcBody) receive(stream grpc.ServerStream) {
	for {
		select {
		case <-b.want:
		case <-b.done:
			return
		}
		f := newFrame()
		err := stream.RecvMsg(f)
		if err == nil {
			f.settle()
			err = f.err
		}
		if err != nil {
			f.free()
			f = nil
		}
		select {
		case b.got <- received{f, err}:
		case <-b.done:
			f.free()
			return
		}
		if err != nil {
			return
		}
	}
}

// recv returns the next message. It fails when the caller sent nothing for
// the idle timeout, or when the upload's context ends.
func (b *grpcBody) recv() (*frame, error) {
	if b.err != nil {
		return nil, b.err
	}
	select {
	case b.want <- struct{}{}:
	case <-b.ctx.Done():
		b.err = context.Cause(b.ctx)
		return nil, b.err
	case <-b.stop:
		b.err = engine.ErrStopped
		return nil, b.err
	}
	b.timer.Reset(b.idle)
	defer b.timer.Stop()
	select {
	case r := <-b.got:
		if r.err != nil {
			b.err = r.err
			return nil, r.err
		}
		return r.f, nil
	case <-b.timer.C:
		b.err = apierr.CallerIdle(b.idle, b.n)
	case <-b.ctx.Done():
		b.err = context.Cause(b.ctx)
	case <-b.stop:
		b.err = engine.ErrStopped
	}
	return nil, b.err
}

// Transport implements engine.Source.
func (b *grpcBody) Transport() string { return "grpc" }

// MediaLen implements engine.Source: a stream's length is not known.
func (b *grpcBody) MediaLen() int64 { return -1 }

// End implements engine.Source: a stream's end is its framing.
func (b *grpcBody) End() error { return nil }

// Start implements engine.Source: the first message.
func (b *grpcBody) Start() (*mediagwv1.UploadStart, error) {
	f, err := b.recv()
	if errors.Is(err, io.EOF) {
		return nil, apierr.Invalidf("the stream ended before its start message")
	}
	if err != nil {
		return nil, err
	}
	defer f.free()
	st := f.GetStart()
	if st == nil {
		return nil, apierr.Invalidf("the first message must be start, not a chunk")
	}
	return st, nil
}

// Interrupt implements engine.Source: it ends a wait for the caller.
func (b *grpcBody) Interrupt() {
	b.once.Do(func() { close(b.stop) })
}

// nextChunk returns the next message's chunk; EOF when the stream ended.
func (b *grpcBody) nextChunk() (*frame, error) {
	for {
		f, err := b.recv()
		if err != nil {
			return nil, err
		}
		if f.GetStart() != nil {
			f.free()
			b.err = apierr.Invalidf("start must be sent once, as the first message")
			return nil, b.err
		}
		if f.size == 0 {
			f.free()
			continue
		}
		return f, nil
	}
}

// Read copies the media into p. The engine reads only the first bytes
// this way (to check the format); the rest goes through Deliver.
func (b *grpcBody) Read(p []byte) (int, error) {
	if b.cur == nil {
		f, err := b.nextChunk()
		if err != nil {
			return 0, err
		}
		b.cur, b.piece, b.off = f, 0, 0
	}
	n := 0
	for n < len(p) && b.piece < len(b.cur.pieces) {
		k := copy(p[n:], b.cur.pieces[b.piece][b.off:])
		n += k
		b.off += k
		if b.off == len(b.cur.pieces[b.piece]) {
			b.piece, b.off = b.piece+1, 0
		}
	}
	if b.piece == len(b.cur.pieces) {
		b.cur.free()
		b.cur = nil
	}
	b.n += int64(n)
	return n, nil
}

// Deliver implements engine.Source: it writes the rest of the media to w,
// one piece of each message at a time, straight from the buffers the
// message arrived in, receiving a message only once w has a buffer for it.
func (b *grpcBody) Deliver(w engine.Sink) error {
	_, err := b.writeTo(w)
	return err
}

func (b *grpcBody) writeTo(w engine.Sink) (int64, error) {
	var total int64
	write := func(f *frame, piece, off int) error {
		defer f.free()
		for i := piece; i < len(f.pieces); i++ {
			p := f.pieces[i][off:]
			off = 0
			n, err := w.Write(p)
			total += int64(n)
			b.n += int64(n)
			if err != nil {
				return err
			}
		}
		return nil
	}
	if f := b.cur; f != nil {
		b.cur = nil
		if err := write(f, b.piece, b.off); err != nil {
			return total, err
		}
	}
	for {
		// A message is received only when there is a buffer for it.
		if err := w.Ready(); err != nil {
			return total, err
		}
		f, err := b.nextChunk()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if err := write(f, 0, 0); err != nil {
			return total, err
		}
	}
}

// close stops the receiver and releases what the body still holds.
func (b *grpcBody) close() {
	close(b.done)
	if b.cur != nil {
		b.cur.free()
		b.cur = nil
	}
}

// frame is one received UploadRequest. Decoded by the service's codec
// (see Codec), a chunk aliases the transport's receive buffers, which
// free returns to their pool once the bytes are in a segment; decoded by
// gRPC's default codec, the embedded message holds a copy.
type frame struct {
	*mediagwv1.UploadRequest
	data   mem.BufferSlice // buffers held for pieces; nil with the default codec
	pieces [][]byte        // the chunk's bytes, in order
	size   int             // len of the chunk
	err    error           // why the message could not be decoded
}

func newFrame() *frame {
	return &frame{UploadRequest: &mediagwv1.UploadRequest{}}
}

// settle fills pieces from the embedded message when the default codec
// decoded it.
func (f *frame) settle() {
	if f.data == nil && f.pieces == nil {
		if c := f.GetChunk(); len(c) > 0 {
			f.pieces, f.size = [][]byte{c}, len(c)
		}
	}
}

func (f *frame) free() {
	if f == nil {
		return
	}
	if f.data != nil {
		f.data.Free()
		f.data = nil
	}
	f.pieces = nil
}
