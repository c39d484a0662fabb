package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// chunkedBody hides its length, so the request is sent chunked.
type chunkedBody struct{ r io.Reader }

func (c chunkedBody) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestUnknownSize: an upload without total_bytes (gRPC 0, REST chunked
// with no total) is spooled, then INITed with its real size; byte-exact,
// and the spool file is gone afterwards.
func TestUnknownSize(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	// A file a stopped mediagw left behind is removed at startup.
	stale := filepath.Join(spool, "mediagw-spool-stale")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, xfake.Options{}, "--spool-dir="+spool)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale spool file after startup: %v", err)
	}
	data := media("video/mp4", 1<<20+5, 61)
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", Sha256: sum(data)}, data, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if info := e.x.Media(t, resp.GetMediaId()); info.TotalBytes != int64(len(data)) {
		t.Fatalf("INIT declared %d bytes, want %d", info.TotalBytes, len(data))
	}

	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", chunkedBody{bytes.NewReader(data)})
	code, out, _ := restUpload(t, req)
	if code != http.StatusOK {
		t.Fatalf("chunked REST upload of unknown size: HTTP %d %v", code, out)
	}
	e.checkStored(out["media_id"].(string), data)
	waitFor(t, func() bool {
		left, _ := filepath.Glob(filepath.Join(spool, "mediagw-spool-*"))
		return len(left) == 0
	})
}

// TestUnknownSizeLimits: the category's limit and the spool's bound apply
// while spooling, before anything reaches X.
func TestUnknownSizeLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--spool-dir="+t.TempDir(), "--max-spool-bytes=1MiB")
	png := media("image/png", 600<<10, 62)
	video := media("video/mp4", 2<<20, 63)
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4"}, video, fixed(32<<10))
	if codeOf(err) != "ResourceExhausted" || !strings.Contains(err.Error(), "spool") {
		t.Fatalf("unknown size over the spool's bound: %v, want ResourceExhausted", err)
	}
	// Images are bounded by X's 5 MiB; an 8 MiB spool lets this show.
	e2 := newEnv(t, xfake.Options{}, "--spool-dir="+t.TempDir(), "--max-spool-bytes=8MiB")
	big := append(png, media("image/png", 5<<20, 64)...)
	req, _ := http.NewRequest(http.MethodPost, e2.httpURL+"/v1/media:upload?media_type=image/png", chunkedBody{bytes.NewReader(big)})
	code, p, _ := problemOf(t, req)
	if code != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "larger than its limit of 5242880 bytes") {
		t.Fatalf("unknown-size image over 5 MiB: HTTP %d %v", code, p)
	}
	for _, x := range []*env{e, e2} {
		if n := x.x.X.Stats().Requests["init"]; n != 0 {
			t.Fatalf("X saw %d INITs for refused uploads", n)
		}
	}
}
