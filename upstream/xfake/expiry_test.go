package xfake_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

// spilled counts the files the emulator spilled under dir.
func spilled(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "xfake-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	dir := t.TempDir()
	c := newClient(t, xfake.Options{Now: clk.Now, SessionTTL: time.Hour, MediaTTL: 2 * time.Hour, SpillDir: dir})

	r := c.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":20,"media_category":"tweet_video"}`)
	if r.data(t)["expires_after_secs"] != float64(3600) {
		t.Errorf("INIT expires_after_secs %v", r.data(t)["expires_after_secs"])
	}
	open := r.data(t)["id"].(string)
	wantStatus(t, c.v2Append(open, 0, mp4(10)), http.StatusOK)
	if n := spilled(t, dir); n != 1 {
		t.Fatalf("%d spilled files, want 1", n)
	}
	done, fin := c.upload("video/mp4", "tweet_video", mp4(10))
	if fin.data(t)["expires_after_secs"] != float64(7200) {
		t.Errorf("FINALIZE expires_after_secs %v", fin.data(t)["expires_after_secs"])
	}
	if n := spilled(t, dir); n != 1 {
		t.Errorf("%d spilled files after FINALIZE, want 1 (finalized segments are hashed and dropped)", n)
	}

	clk.Add(time.Hour)
	invalid(t, c.v2Append(open, 1, mp4(10)), "BadRequest: Not found")
	invalid(t, c.v2Finalize(open), "BadRequest: Not found")
	wantStatus(t, c.do(http.MethodGet, "/_xfake/media/"+open, "", nil), http.StatusNotFound)
	if n := spilled(t, dir); n != 0 {
		t.Errorf("%d spilled files after expiry, want 0", n)
	}
	wantStatus(t, c.v2Status(done), http.StatusOK) // media lives MediaTTL after FINALIZE
	clk.Add(time.Hour)
	invalid(t, c.v2Status(done), "BadRequest: Not found")
	v1 := c.as(oauthHeader("t")).do(http.MethodGet, v11+"?"+url.Values{"command": {"STATUS"}, "media_id": {done}}.Encode(), "", nil)
	wantStatus(t, v1, http.StatusNotFound)
	wantStatus(t, c.do(http.MethodGet, "/_xfake/media/"+done, "", nil), http.StatusNotFound)
}

func TestJanitorAndClose(t *testing.T) {
	t.Parallel()
	clk := newClock()
	dir := t.TempDir()
	c := newClient(t, xfake.Options{Now: clk.Now, SessionTTL: 100 * time.Millisecond, SpillDir: dir})
	id := c.v2Init("video/mp4", 20, "")
	wantStatus(t, c.v2Append(id, 0, mp4(10)), http.StatusOK)
	clk.Add(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for spilled(t, dir) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the janitor never removed the expired session's segment")
		}
		time.Sleep(20 * time.Millisecond)
	}

	x := xfake.New(xfake.Options{SpillDir: dir})
	if m, _ := filepath.Glob(filepath.Join(dir, "xfake-*")); len(m) != 2 {
		t.Fatalf("spill dirs %v", m)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "xfake-*")); len(m) != 1 {
		t.Errorf("Close left %v", m)
	}
}
