package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// smallDisk mounts an 8 MiB tmpfs for the test; it needs root, and says so
// when it skips (CI runs as root, and fails instead).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs: %v %s", err, out)
		}
		t.Skipf("mounting a tmpfs needs root (%v %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFullSpoolDisk: an upload of unknown size that does not fit the
// spool's disk is ResourceExhausted (REST 429 with Retry-After) in words
// that neither blame X nor name a path, and an upload of known size still
// goes through at once.
func TestFullSpoolDisk(t *testing.T) {
	disk := smallDisk(t)
	e := newEnv(t, xfake.Options{}, "--spool-dir="+disk, "--max-spool-bytes=64MiB", "--buffer-wait=5s")
	big := media("video/mp4", 12<<20, 71)
	req, _ := http.NewRequest(http.MethodPost, e.httpURL+"/v1/media:upload?media_type=video/mp4", chunkedBody{bytes.NewReader(big)})
	code, out, h := restUpload(t, req)
	detail, _ := out["detail"].(string)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("spool disk full: HTTP %d Retry-After %q %v", code, h.Get("Retry-After"), out)
	}
	if strings.Contains(detail, "X ") || strings.Contains(detail, disk) || strings.Contains(detail, "/") {
		t.Fatalf("the refusal blames X or names a path: %q", detail)
	}
	// gRPC: the same code.
	_, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4"}, big, fixed(256<<10))
	if err == nil || !strings.Contains(err.Error(), "ResourceExhausted") {
		t.Fatalf("gRPC upload of unknown size on a full disk: %v", err)
	}
	// With the disk full to the last byte, a normal upload (known size,
	// no spool) finishes well within --buffer-wait.
	filler, err := os.Create(disk + "/filler")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 1<<20)); err != nil {
			break
		}
	}
	_ = filler.Close()
	data := media("video/mp4", 3<<20, 72)
	start := time.Now()
	resp, err := e.upload(context.Background(), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(data))}, data, fixed(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a normal upload took %v with the spool disk full", took)
	}
	e.checkStored(resp.GetMediaId(), data)
	if strings.Contains(e.logs.String(), `"msg":"upload"`) && !strings.Contains(e.logs.String(), "no space left on device") {
		t.Fatalf("the log does not say why (no space left on device):\n%s", e.logs.String())
	}
}
