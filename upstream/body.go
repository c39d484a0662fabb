package upstream

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// errBodyDetached is what a request body reads after its attempt ended.
var errBodyDetached = errors.New("request body read after its attempt ended")

// body is one attempt's request body: the request's parts (for APPEND a
// multipart head, the caller's segment buffer and a tail), sent in place.
//
// Any transport reads it through Read, which copies into the transport's
// buffer. The Client's own connections (bodyConn) recognise it behind
// net/http's io.LimitReader and call writeTo instead, which hands the parts
// to the socket with one writev, so the segment is never copied in user
// space. It deliberately has no WriteTo method: writeTo only writes to a
// connection it can close, which is what lets detach end a write that is
// still running.
type body struct {
	mu       sync.Mutex
	parts    [][]byte    // what is left to send; nil once detached
	partOff  int64       // bytes of parts[0] already sent
	progress func()      // called after every read or write that moved bytes
	own      [3][]byte   // backing of parts for up to three parts
	bufs     net.Buffers // writeTo's scratch
	ownBufs  [3][]byte   // backing of bufs

	detaching atomic.Bool
	writing   atomic.Pointer[net.Conn] // the connection of a writeTo in progress
}

// Read implements io.Reader. It reads from one part at a time and, inside
// a part, ends where the rest of the part starts on a 64-byte boundary
// when it can: the next copy out of a segment buffer is then aligned,
// which Go's memmove does several times faster than an odd offset.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parts == nil {
		return 0, errBodyDetached
	}
	if len(b.parts) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	part := b.parts[0]
	k := int64(min(len(p), len(part)))
	if k < int64(len(part)) {
		if aligned := (b.partOff+k)&^63 - b.partOff; aligned > 0 {
			k = aligned
		}
	}
	copy(p, part[:k])
	b.advance(k)
	b.progress()
	return int(k), nil
}

// Close implements io.Closer; the parts belong to the caller.
func (b *body) Close() error { return nil }

// advance drops the first n bytes of the parts. Called with mu held.
func (b *body) advance(n int64) {
	for n > 0 && len(b.parts) > 0 {
		if k := int64(len(b.parts[0])); n >= k {
			n -= k
			b.parts, b.partOff = b.parts[1:], 0
			continue
		}
		b.parts[0] = b.parts[0][n:]
		b.partOff += n
		n = 0
	}
	for len(b.parts) > 0 && len(b.parts[0]) == 0 {
		b.parts, b.partOff = b.parts[1:], 0
	}
	if b.parts == nil {
		b.parts = [][]byte{} // drained, not detached
	}
}

// writeTo writes at most limit bytes of what is left straight to c: one
// writev on a TCP connection, a Write per part on TLS.
func (b *body) writeTo(c net.Conn, limit int64) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parts == nil {
		return 0, errBodyDetached
	}
	// Announce the write before checking for a detach, while detach marks
	// itself before looking for a write: one of the two sees the other.
	b.writing.Store(&c)
	defer b.writing.Store(nil)
	if b.detaching.Load() {
		return 0, errBodyDetached
	}
	b.bufs = b.ownBufs[:0]
	for _, p := range b.parts {
		if limit <= 0 {
			break
		}
		p = p[:min(int64(len(p)), limit)]
		limit -= int64(len(p))
		b.bufs = append(b.bufs, p)
	}
	n, err := b.bufs.WriteTo(c)
	b.bufs = nil
	b.advance(n)
	if n > 0 {
		b.progress()
	}
	return n, err
}

// detach returns once nothing reads the parts and nothing will again. A
// writeTo still running (X answered before the body was sent) is ended by
// closing its connection, which net/http would not reuse anyway.
func (b *body) detach() {
	b.detaching.Store(true)
	if c := b.writing.Load(); c != nil {
		_ = (*c).Close()
	}
	b.mu.Lock()
	b.parts = nil
	b.mu.Unlock()
}

// detachables are the bodies of one attempt. A body reads the caller's
// segment buffer in place; net/http may still be sending it after the
// answer arrived (X may answer before reading it all), so when the attempt
// ends every body is detached: later reads fail instead of touching a
// buffer that is about to go back to the pool and be refilled.
type detachables struct {
	mu     sync.Mutex
	bodies []*body
}

func (d *detachables) open(parts [][]byte, progress func()) *body {
	b := &body{progress: progress}
	b.parts = append(b.own[:0], parts...) // advance reslices the parts: never those of the request
	d.mu.Lock()
	d.bodies = append(d.bodies, b)
	d.mu.Unlock()
	return b
}

// detach returns once no body is being read and none will be again.
func (d *detachables) detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.bodies {
		b.detach()
	}
}

// bodyConn is a connection of the Client's own transport. net/http writes
// a request body with io.Copy(conn, io.LimitReader(body, ContentLength));
// ReadFrom recognises this package's body there and writes it in place.
type bodyConn struct{ net.Conn }

// ReadFrom implements io.ReaderFrom.
func (c *bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*body); ok {
			n, err := b.writeTo(c.Conn, lr.N)
			lr.N -= n
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r) // *net.TCPConn: splice and sendfile where they apply
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn returns the wrapped connection.
func (c *bodyConn) NetConn() net.Conn { return c.Conn }
