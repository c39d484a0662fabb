package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestResumeAfterCut cuts the connection between mediagwctl and mediagw
// part-way through an upload: mediagwctl must resume from the bytes X
// has committed and finish byte-exact with a single INIT at X.
func TestResumeAfterCut(t *testing.T) {
	t.Parallel()
	const size = 8<<20 + 321
	for _, tr := range []string{"grpc", "rest"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			st := newStack(t, xfake.Options{})
			target := st.grpcAddr
			if tr == "rest" {
				target = st.httpAddr
			}
			proxy := newCutProxy(t, target, 5<<20)
			args := []string{"upload", "--json", "--server", proxy.addr()}
			if tr == "rest" {
				args = []string{"upload", "--json", "--rest", "--rest-url", "http://" + proxy.addr()}
			}
			path, sum := writeMedia(t, "long.mp4", mp4Magic, size, 21)
			code, stdout, stderr := ctl(t, nil, append(args, path)...)
			if code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			if proxy.cuts.Load() != 1 || proxy.conns.Load() < 2 {
				t.Fatalf("proxy: %d cuts, %d connections; the cut did not happen mid-upload", proxy.cuts.Load(), proxy.conns.Load())
			}
			res := jsonResults(t, stdout)
			if len(res) != 1 || res[0].MediaID == "" || res[0].Size != size {
				t.Fatalf("results %+v", res)
			}
			info := st.x.Media(t, res[0].MediaID)
			if info.SHA256 != sum || info.Size != size {
				t.Fatalf("X holds %d bytes, sha256 %s; want %d, %s", info.Size, info.SHA256, size, sum)
			}
			m := regexp.MustCompile(`resuming at (\S+ \S+)`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("no resume notice on stderr:\n%s", stderr)
			}
			if n := st.inits(); n != 1 {
				t.Fatalf("X saw %d INITs, want 1 (resumed at %s); stderr:\n%s", n, m[1], stderr)
			}
			if m[1] == "0 B" {
				t.Fatalf("the upload started over instead of resuming:\n%s", stderr)
			}
		})
	}
}

// TestRerunReturnsSameMediaID runs the same upload twice: the second run
// answers the first's media id from mediagw's ledger without a call to X.
func TestRerunReturnsSameMediaID(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "clip.mp4", mp4Magic, 2<<20, 22)
		args := append([]string{"upload", path, "--json"}, flags...)
		code, stdout, stderr := ctl(t, nil, args...)
		if code != exitOK {
			t.Fatalf("first run: exit %d; stderr:\n%s", code, stderr)
		}
		first := jsonResults(t, stdout)
		before := st.xRequests()
		code, stdout, stderr = ctl(t, nil, args...)
		if code != exitOK {
			t.Fatalf("second run: exit %d; stderr:\n%s", code, stderr)
		}
		second := jsonResults(t, stdout)
		if len(first) != 1 || len(second) != 1 || second[0].MediaID != first[0].MediaID ||
			second[0].IdempotencyKey != first[0].IdempotencyKey {
			t.Fatalf("first %+v, second %+v", first, second)
		}
		if after := st.xRequests(); after != before {
			t.Fatalf("the second run made %d requests to X, want none", after-before)
		}
	})
}

// TestUploadsCommand reads the ledger entry of a finished upload.
func TestUploadsCommand(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "clip.mp4", mp4Magic, 1<<20+3, 23)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--json"}, flags...)...)
		if code != exitOK {
			t.Fatalf("upload: exit %d; stderr:\n%s", code, stderr)
		}
		r := jsonResults(t, stdout)[0]
		code, stdout, stderr = ctl(t, nil, append([]string{"uploads", r.IdempotencyKey}, flags...)...)
		if code != exitOK {
			t.Fatalf("uploads: exit %d; stderr:\n%s", code, stderr)
		}
		var state struct {
			Phase          string `json:"phase"`
			CommittedBytes string `json:"committed_bytes"`
			Response       struct {
				MediaID string `json:"media_id"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(stdout), &state); err != nil {
			t.Fatalf("uploads printed %q: %v", stdout, err)
		}
		if state.Phase != "UPLOAD_PHASE_COMPLETED" || state.CommittedBytes != "1048579" || state.Response.MediaID != r.MediaID {
			t.Fatalf("uploads printed %s", stdout)
		}
		code, _, stderr = ctl(t, nil, append([]string{"uploads", "ctl-never-used"}, flags...)...)
		if code != exitFailed || !strings.Contains(stderr, "NotFound") {
			t.Fatalf("unknown key: exit %d, stderr %q", code, stderr)
		}
	})
}

// TestStatusAndWatchCommands follows an upload's processing with the
// status and watch commands.
func TestStatusAndWatchCommands(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "clip.mp4", mp4Magic, 1<<20, 24)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--json"}, flags...)...)
		if code != exitOK {
			t.Fatalf("upload: exit %d; stderr:\n%s", code, stderr)
		}
		id := jsonResults(t, stdout)[0].MediaID
		code, stdout, stderr = ctl(t, nil, append([]string{"status", id}, flags...)...)
		if code != exitOK || !strings.Contains(stdout, `"media_id":"`+id+`"`) || !strings.Contains(stdout, `"state":"PROCESSING_STATE_`) {
			t.Fatalf("status: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		code, stdout, stderr = ctl(t, nil, append([]string{"watch", id}, flags...)...)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != exitOK || !strings.Contains(lines[len(lines)-1], "PROCESSING_STATE_SUCCEEDED") {
			t.Fatalf("watch: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		code, _, stderr = ctl(t, nil, append([]string{"status", "1234567890"}, flags...)...)
		if code != exitFailed || !strings.Contains(stderr, "NotFound") {
			t.Fatalf("status of an unknown id: exit %d, stderr %q", code, stderr)
		}
	})
}

// TestWatchProcessingFailureExitsThree watches media X fails to process.
func TestWatchProcessingFailureExitsThree(t *testing.T) {
	t.Parallel()
	st := newStack(t, xfake.Options{})
	path, _ := writeMedia(t, "broken.ts", "\x00", 100<<10, 25)
	code, stdout, stderr := ctl(t, nil, "upload", path, "--json", "--server", st.grpcAddr)
	if code != exitOK {
		t.Fatalf("upload without --watch: exit %d; stderr:\n%s", code, stderr)
	}
	id := jsonResults(t, stdout)[0].MediaID
	code, _, stderr = ctl(t, nil, "watch", id, "--server", st.grpcAddr)
	if code != exitProcessing || !strings.Contains(stderr, "InvalidMedia") {
		t.Fatalf("watch: exit %d, stderr %q", code, stderr)
	}
}
