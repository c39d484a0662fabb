package client_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOtherLanguages runs the Python (stdlib) and Node (fetch) examples of
// docs/clients.md against mediagw through a proxy that cuts their upload
// mid-way: each resumes and X holds the file byte-exact after one INIT.
// Without python3 or node the case is skipped, unless CI is set.
func TestOtherLanguages(t *testing.T) {
	st := newStack(t, nil)
	docs, _ := filepath.Abs("../../docs/examples")
	for _, tc := range []struct{ name, bin, script string }{
		{"python", "python3", filepath.Join(docs, "python", "upload.py")},
		{"node", "node", filepath.Join(docs, "node", "upload.mjs")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, err := exec.LookPath(tc.bin)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is missing (CI is set, so no skipping)", tc.bin)
				}
				t.Skipf("%s is missing", tc.bin)
			}
			const size = 3<<20 + 777
			data := mp4(size, uint64(len(tc.name)))
			p := newProxy(t, st.m.httpAddr)
			// Python opens a connection per request (the ledger query, then
			// the upload); Node reuses one: either way an upload is cut.
			p.plan(1<<20, 1<<20)
			before := xStats(t, st.x)["init"]
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.script, writeFile(t, data), "video/mp4", "http://"+p.addr())
			if tc.name == "python" {
				cmd.Args = append(cmd.Args[:len(cmd.Args)-1], "--url", "http://"+p.addr())
			}
			out, err := cmd.Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("%s: %v\n%s", tc.name, err, stderr)
			}
			var res struct {
				MediaID string `json:"media_id"`
				Key     string `json:"idempotency_key"`
				Resumes int    `json:"resumes"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if n, sha := xMedia(t, st.x, res.MediaID); n != size || sha != sum(data) {
				t.Fatalf("X holds %d bytes, sha256 %s; want %d, %s", n, sha, size, sum(data))
			}
			if inits := xStats(t, st.x)["init"] - before; inits != 1 || res.Resumes < 1 || p.cut.Load() < 1 {
				t.Fatalf("%d INITs, %d resumes, %d cuts; want 1 INIT after a cut and a resume", inits, res.Resumes, p.cut.Load())
			}
			t.Logf("%s: %s, %d resumes after %d cuts", tc.name, out, res.Resumes, p.cut.Load())
		})
	}
}
