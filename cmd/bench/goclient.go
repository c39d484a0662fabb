package main

import (
	"context"
	"time"

	"github.com/mediagw/mediagw/service/client"
)

// modeGoClient uploads through the Go client package (service/client)
// over gRPC: the same stream as modeGRPC, plus what the package adds
// (its reader, progress accounting, stall watchdog, error reading; with
// -keyed the ledger query before the upload).
const modeGoClient = "go-client"

// goClientSHA256 makes the go-client path hash what it sends (-go-client-sha256).
var goClientSHA256 bool

// goClient uploads through service/client, reading the generator as a
// plain io.Reader of known size: no derived key and, unless
// goClientSHA256, no SHA-256 as it reads.
type goClient struct {
	c     *client.Client
	keyed bool // a fresh idempotency key per upload
}

func newGoClient(addr string, chunk int) (*goClient, error) {
	c, err := client.New("passthrough:///"+addr, client.WithInsecure(), client.WithChunkSize(chunk), client.WithoutOTel(),
		client.WithRetry(client.RetryPolicy{}))
	if err != nil {
		return nil, err
	}
	return &goClient{c: c}, nil
}

func (c *goClient) upload(ctx context.Context, g *gen) (u upload) {
	u = upload{genID: g.id, size: g.size, start: time.Now()}
	defer func() { u.end, u.lastByte = time.Now(), g.doneAt }()
	o := client.UploadOptions{MediaType: "video/mp4", NoSHA256: !goClientSHA256}
	if c.keyed {
		o.IdempotencyKey = freshKey()
	}
	res, err := c.c.Upload(ctx, client.Reader(g, g.size), o)
	if err != nil {
		u.err = err
		return u
	}
	u.mediaID, u.answered = res.MediaID, res.Response.GetSize()
	return u
}
