package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// blockSize is the period of the generated data: one fixed random block,
// repeated, with a 16-byte tag at the start of every block.
const (
	blockSize = 1 << 20
	tagLen    = 16
)

// dataBlock is the random block every upload repeats. It is never written
// after init, so its slices can be handed to transports as they are.
var dataBlock = func() []byte {
	b := make([]byte, blockSize)
	r := rand.New(rand.NewChaCha8([32]byte{'m', 'e', 'd', 'i', 'a', 'g', 'w'}))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}()

// uploadIDs numbers the uploads of one bench process; each upload's bytes
// differ from every other's in the tag of every block.
var uploadIDs atomic.Uint64

func init() { uploadIDs.Store(uint64(time.Now().UnixNano())) }

// gen generates the bytes of one upload: dataBlock repeated, with block 0
// starting like an mp4 ("....ftyp") and every block tagged with the upload
// id and its index, so a segment sent to the wrong upload or position
// changes the digest. Generation is a copy (Read) or no copy at all
// (Chunk, WriteTo); hashing is done separately by digest, after timing.
type gen struct {
	id     uint64
	size   int64
	off    int64
	doneAt time.Time // when the last byte was handed out
}

func newGen(size int64) *gen { return &gen{id: uploadIDs.Add(1), size: size} }

// tag returns the 16 bytes that replace the start of block k.
func (g *gen) tag(k int64) [tagLen]byte {
	var t [tagLen]byte
	if k == 0 {
		if g.movie() {
			copy(t[:], "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00")
			return t // the id is in the ftyp's compatible brands (overlay)
		}
		copy(t[:], "\x00\x00\x00\x18ftyp")
		binary.BigEndian.PutUint64(t[8:], g.id)
		return t
	}
	binary.BigEndian.PutUint64(t[:8], g.id)
	binary.BigEndian.PutUint64(t[8:], uint64(k))
	return t
}

// The generated upload is a well-formed MP4 movie, so that mediagw's
// media checks inspect it as they would a real one: an ftyp (24 bytes,
// the upload id as its compatible brands), an mdat holding the tagged
// blocks, and at the end the moov of a real 2-second H.264 movie made
// with ffmpeg (testdata/moov.bin; its sample offsets point into the
// mdat's random bytes, which the checks do not decode). Uploads too small
// to hold it keep the plain ftyp tag.
//
//go:embed testdata/moov.bin
var moovBox []byte

// headerLen is the ftyp and the mdat header (64-bit size).
const headerLen = 24 + 16

// movie says whether the upload is laid out as a movie.
func (g *gen) movie() bool { return g.size >= 2*headerLen+int64(len(moovBox)) }

// overlaid says whether [off, off+n) holds movie bytes outside the tags.
func (g *gen) overlaid(off, n int64) bool {
	return g.movie() && (off < headerLen || off+n > g.size-int64(len(moovBox)))
}

// overlay writes the movie's bytes that fall in [off, off+len(p)) into p:
// the id and the mdat header after the first tag, the moov at the end.
func (g *gen) overlay(p []byte, off int64) {
	if !g.overlaid(off, int64(len(p))) {
		return
	}
	var head [headerLen - tagLen]byte
	binary.BigEndian.PutUint64(head[0:], g.id)
	copy(head[8:], "\x00\x00\x00\x01mdat")
	binary.BigEndian.PutUint64(head[16:], uint64(g.size-24-int64(len(moovBox))))
	put := func(b []byte, at int64) {
		lo, hi := max(at, off), min(at+int64(len(b)), off+int64(len(p)))
		if lo < hi {
			copy(p[lo-off:hi-off], b[lo-at:hi-at])
		}
	}
	put(head[:], tagLen)
	put(moovBox, g.size-int64(len(moovBox)))
}

// fill writes the bytes at [off, off+len(p)) into p.
func (g *gen) fill(p []byte, off int64) {
	defer g.overlay(p, off)
	for done := 0; done < len(p); {
		pos := off + int64(done)
		in := pos % blockSize
		c := copy(p[done:], dataBlock[in:])
		if in < tagLen {
			t := g.tag(pos / blockSize)
			copy(p[done:done+c], t[in:])
		}
		done += c
	}
}

// remaining returns the bytes not handed out yet.
func (g *gen) remaining() int64 { return g.size - g.off }

func (g *gen) advance(n int) {
	g.off += int64(n)
	if g.off == g.size {
		g.doneAt = time.Now()
	}
}

// Read implements io.Reader.
func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if int64(len(p)) > g.remaining() {
		p = p[:g.remaining()]
	}
	g.fill(p, g.off)
	g.advance(len(p))
	return len(p), nil
}

// Chunk returns the next up to max bytes. A chunk that lies inside one
// block and misses its tag is a slice of dataBlock (no copy; the caller
// must not modify it); others are freshly allocated. It returns nil at the
// end.
func (g *gen) Chunk(max int) []byte {
	n := int(min(int64(max), g.remaining()))
	if n <= 0 {
		return nil
	}
	in := g.off % blockSize
	var p []byte
	if in >= tagLen && in+int64(n) <= blockSize && !g.overlaid(g.off, int64(n)) {
		p = dataBlock[in : in+int64(n) : in+int64(n)]
	} else {
		p = make([]byte, n)
		g.fill(p, g.off)
	}
	g.advance(n)
	return p
}

// WriteTo writes the remaining bytes to w in pieces of at most one block,
// taken straight from dataBlock and the tags.
func (g *gen) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for g.off < g.size {
		in := g.off % blockSize
		var piece []byte
		if in < tagLen {
			t := g.tag(g.off / blockSize)
			piece = t[in:]
		} else {
			piece = dataBlock[in:]
		}
		if int64(len(piece)) > g.remaining() {
			piece = piece[:g.remaining()]
		}
		if g.overlaid(g.off, int64(len(piece))) {
			piece = append([]byte(nil), piece...)
			g.overlay(piece, g.off)
		}
		n, err := w.Write(piece)
		total += int64(n)
		g.advance(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// The digests X may report: the emulator's SHA-256, and the sink's XXH64
// (its default) or SHA-256.
const (
	digestSHA256 = "sha256"
	digestXXH64  = "xxh64"
)

// newDigest returns a hash of kind, which must be digestSHA256 or
// digestXXH64. Both implement encoding.BinaryMarshaler, which the sink
// uses to undo a segment that failed half-way.
//
// XXH64 is the sink's default because SHA-256 is not cheap next to what
// is measured: about 1 GB/s with SHA-NI on a 2-core test machine, about
// 1 CPU s/GiB, more than a bare relay spends in all. XXH64 runs at about
// 8 GB/s and, as a 64-bit checksum of bytes in order, tells a byte-exact
// upload from a corrupt, short or misordered one just as well (it is not
// meant to resist forgery, which is not the question here).
func newDigest(kind string) hash.Hash {
	if kind == digestSHA256 {
		return sha256.New()
	}
	return xxhash.New()
}

// digest returns the hex SHA-256 of all the bytes of upload id of size.
func digest(id uint64, size int64) string { return digestOf(digestSHA256, id, size) }

// digestOf returns the hex digest of kind of all the bytes of upload id of
// size.
func digestOf(kind string, id uint64, size int64) string {
	h := newDigest(kind)
	_, _ = (&gen{id: id, size: size}).WriteTo(h)
	return hex.EncodeToString(h.Sum(nil))
}
