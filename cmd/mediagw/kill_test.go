package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestKill9MidUploadResumes kills the real binary with SIGKILL in the
// middle of an upload (over gRPC and over REST), starts it again on the
// same ledger, and resumes: the upload reads INTERRUPTED at a segment
// boundary, finishes byte-exact with the sha256 declared before the crash
// verified, and X saw one INIT and one FINALIZE.
func TestKill9MidUploadResumes(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			x := xfaketest.New(t, xfake.Options{Tokens: []string{testToken}, Seed: 71})
			args := []string{"--x-api-url=" + x.URL, "--x-token=" + testToken, "--segment-size=64KiB",
				"--ledger=" + filepath.Join(t.TempDir(), "ledger.db")}
			data := media("video/mp4", 2<<20+99, 72)
			key := "kill9-" + transport
			p := startProc(t, args...)
			committed := func(c mediagwv1.MediaUploadServiceClient) bool {
				st, err := c.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: key})
				return err == nil && st.GetCommittedBytes() > 0
			}
			if transport == "grpc" {
				stream, err := p.client.Upload(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				_ = stream.Send(startMsg(keyed(key, data, true)))
				for off := 0; off < 700<<10; off += 32 << 10 {
					_ = stream.Send(chunkMsg(data[off : off+32<<10]))
				}
			} else {
				conn, err := net.Dial("tcp", p.httpAddr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				fmt.Fprintf(conn, "POST /v1/media:upload?media_type=video/mp4&sha256=%s HTTP/1.1\r\nHost: x\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n",
					sum(data), key, len(data))
				_, _ = conn.Write(data[:700<<10])
			}
			waitFor(t, func() bool { return committed(p.client) })
			p.kill()

			p = startProc(t, args...)
			st, err := p.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: key})
			if err != nil {
				t.Fatal(err)
			}
			off := st.GetCommittedBytes()
			if st.GetPhase() != mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED || off == 0 || off%(64<<10) != 0 {
				t.Fatalf("after the restart: %v, want INTERRUPTED at a segment boundary", st)
			}
			var id string
			if transport == "grpc" {
				e := &env{t: t, client: p.client}
				resp, err := e.upload(context.Background(), resumeAt(key, off), data[off:], fixed(32<<10))
				if err != nil {
					t.Fatal(err)
				}
				id = resp.GetMediaId()
			} else {
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v1/media:upload?resume_offset=%d", p.httpAddr, off), bytes.NewReader(data[off:]))
				req.Header.Set("Idempotency-Key", key)
				code, out, _ := restUpload(t, req)
				if code != http.StatusOK {
					t.Fatalf("REST resume: HTTP %d %v", code, out)
				}
				id = out["media_id"].(string)
			}
			if info := x.Media(t, id); info.SHA256 != sum(data) || info.Size != int64(len(data)) {
				t.Fatalf("media at X: sha256 %s size %d, want %s %d", info.SHA256, info.Size, sum(data), len(data))
			}
			if s := x.X.Stats(); s.Requests["init"] != 1 || s.Requests["finalize"] != 1 {
				t.Fatalf("X saw %d INIT and %d FINALIZE, want 1 each", s.Requests["init"], s.Requests["finalize"])
			}
		})
	}
}

// TestEveryLogLineIsJSON: what grpc-go and grpc-gateway log goes through
// mediagw's logger too (a malformed Content-Type makes the gateway log).
func TestEveryLogLineIsJSON(t *testing.T) {
	t.Parallel()
	p := startProc(t, "--emulator", "--ledger=off")
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.httpAddr+"/v1/media:upload?media_type=image/png", bytes.NewReader(media("image/png", 100, 1)))
	req.Header.Set("Content-Type", "image/png; ===")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	if n := p.nonJSON.Load(); n != 0 || p.stderr.Len() != 0 {
		t.Fatalf("%d log lines are not JSON:\n%s\nstderr:\n%s", n, p.logs.String(), p.stderr.String())
	}
}
