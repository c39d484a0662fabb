package engine

import (
	"io"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// Source is an upload as a transport delivers it: its start message, then
// its media bytes.
type Source interface {
	// Transport names the transport in spans and logs (grpc, rest).
	Transport() string
	// MediaLen is how many media bytes the body holds when the transport
	// knows it before reading them (a raw REST body's Content-Length),
	// else -1.
	MediaLen() int64
	// Start reads the start message that describes the media.
	Start() (*mediagwv1.UploadStart, error)
	// Read reads media bytes; the engine reads the first bytes this way
	// (to check their format before INIT), and spools an upload of unknown
	// size through it.
	io.Reader
	// Deliver hands the rest of the media to dst until it ends: a body
	// whose bytes already sit in buffers (the gRPC stream) writes them,
	// one waiting for dst.Ready before it receives more; a body read from
	// a connection has dst read it (dst.ReadFrom), straight into segment
	// buffers.
	Deliver(dst Sink) error
	// End checks what follows the media once it ended, before anything is
	// finalized (a multipart body must close with its boundary and hold
	// nothing after the media part); nil when all is well.
	End() error
	// Interrupt ends a blocked read: the upload is being stopped (a resume
	// takes it over, mediagw drains). Reads fail from then on.
	Interrupt()
}

// Sink takes an upload's media bytes: they are counted, hashed and cut
// into X segments.
type Sink interface {
	// Write takes the next bytes; it blocks while the upload's segments in
	// flight are at their limit.
	io.Writer
	// Ready blocks until there is a segment buffer for the next bytes, so
	// that a transport receives a message only when it has somewhere to go.
	Ready() error
	// ReadFrom reads r to its end straight into segment buffers.
	io.ReaderFrom
}
