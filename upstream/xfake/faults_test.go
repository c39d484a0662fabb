package xfake_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mediagw/mediagw/upstream/xfake"
)

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	body := `{"media_type":"video/mp4","total_bytes":4}`
	v1init := url.Values{"command": {"INIT"}, "media_type": {"video/mp4"}, "total_bytes": {"4"}}
	t.Run("503", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.Fault503}})
		r := c.postJSON("/2/media/upload/initialize", body)
		wantStatus(t, r, http.StatusServiceUnavailable)
		sameJSON(t, r.body, `{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}`)
		r = c.as(oauthHeader("t")).postForm(v11, v1init)
		wantStatus(t, r, http.StatusServiceUnavailable)
		sameJSON(t, r.body, `{"errors":[{"code":130,"message":"Over capacity"}]}`)
		if st := c.srv.X.Stats(); st.Faults[xfake.Fault503] != 2 || st.FaultsInjected != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("500", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.Fault500}})
		r := c.v2Status("1234567890123456789")
		wantStatus(t, r, http.StatusInternalServerError)
		sameJSON(t, r.body, rec(t, "v2 500 (fragment)"))
		r = c.as(oauthHeader("t")).postForm(v11, v1init)
		wantStatus(t, r, http.StatusInternalServerError)
		sameJSON(t, r.body, `{"errors":[{"code":131,"message":"Internal error"}]}`)
	})
	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultReset}})
		for range 4 {
			_, err := c.try(http.MethodPost, "/2/media/upload/initialize", "application/json", stringsReader(body))
			if err == nil {
				t.Fatal("reset fault: request succeeded")
			}
			t.Logf("reset observed as %v", err)
		}
		if got := c.srv.X.Stats().Faults[xfake.FaultReset]; got != 4 {
			t.Errorf("reset faults = %d", got)
		}
	})
	t.Run("stall", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultStall}, StallFor: 20 * time.Second})
		c.hc = &http.Client{Timeout: 300 * time.Millisecond}
		start := time.Now()
		_, err := c.try(http.MethodPost, "/2/media/upload/initialize", "application/json", stringsReader(body))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("stall: want a client timeout, got %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("timed out after %v", d)
		}
		// A short stall ends by dropping the connection.
		short := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultStall}, StallFor: 200 * time.Millisecond})
		start = time.Now()
		if _, err := short.try(http.MethodGet, "/2/media/upload?media_id=1", "", nil); err == nil {
			t.Fatal("stall: request succeeded")
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("dropped after %v, before StallFor", d)
		}
	})
	t.Run("not on inspection or token", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, xfake.Options{FaultRate: 1, FaultKinds: []xfake.FaultKind{xfake.FaultReset}})
		wantStatus(t, c.do(http.MethodGet, "/_xfake/stats", "", nil), http.StatusOK)
		wantStatus(t, c.do(http.MethodGet, "/_xfake/media/1", "", nil), http.StatusNotFound)
		wantStatus(t, c.postForm("/2/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}}), http.StatusOK)
	})
}

// TestFaultBeforeAndAfter checks both halves of the fault semantics through
// inspection: a fault before leaves no trace, a fault after applies the
// request and loses the answer, so re-sent segments must replace and a
// FINALIZE retry may see "already finalized".
func TestFaultBeforeAndAfter(t *testing.T) {
	t.Parallel()
	c := newClient(t, xfake.Options{FaultRate: 0.5, FaultKinds: []xfake.FaultKind{xfake.Fault503}, Seed: 42})
	const n = 40
	data := mp4(n * 10)
	var id string
	for i := 0; id == ""; i++ {
		if i > 50 {
			t.Fatal("INIT kept failing")
		}
		if r := c.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":400,"media_category":"tweet_video"}`); r.status == http.StatusOK {
			id = r.data(t)["id"].(string)
		}
	}
	before, after := 0, 0
	landed := map[int]bool{}
	for round := 0; len(landed) < n; round++ {
		if round > 30 {
			t.Fatal("segments never all landed")
		}
		for i := range n {
			if landed[i] {
				continue
			}
			prev := c.srv.Media(t, id).AppendRequests
			r := c.v2Append(id, i, data[i*10:(i+1)*10])
			applied := c.srv.Media(t, id).AppendRequests > prev
			switch {
			case r.status == http.StatusOK:
				landed[i] = true
			case r.status != http.StatusServiceUnavailable:
				t.Fatalf("append %d: %s", i, r)
			case applied:
				after++
				// The answer was lost: a client re-sends; the re-send replaces.
			default:
				before++
			}
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("faults before=%d after=%d: want both", before, after)
	}
	finalizedUnseen := false
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("FINALIZE kept failing")
		}
		r := c.v2Finalize(id)
		if r.status == http.StatusServiceUnavailable {
			finalizedUnseen = finalizedUnseen || c.srv.Media(t, id).State != "uploading"
			continue
		}
		if finalizedUnseen {
			invalid(t, r, "BadRequest: Media already finalized")
		} else {
			wantStatus(t, r, http.StatusOK)
		}
		break
	}
	sum := sha256.Sum256(data)
	if info := c.srv.Media(t, id); info.SHA256 != hex.EncodeToString(sum[:]) || info.AppendRequests != n+after {
		t.Errorf("inspection %+v (after-faults %d)", info, after)
	}
	t.Logf("append faults: %d before, %d after; FINALIZE answer lost: %v", before, after, finalizedUnseen)
}

func TestFaultsDeterministicUnderSeed(t *testing.T) {
	t.Parallel()
	run := func() (statuses []int, ids []string) {
		c := newClient(t, xfake.Options{FaultRate: 0.5, FaultKinds: []xfake.FaultKind{xfake.Fault503, xfake.Fault500}, Seed: 7})
		for range 20 {
			r := c.postJSON("/2/media/upload/initialize", `{"media_type":"video/mp4","total_bytes":4}`)
			statuses = append(statuses, r.status)
			if r.status == http.StatusOK {
				ids = append(ids, r.data(t)["id"].(string))
			}
		}
		return statuses, ids
	}
	s1, i1 := run()
	s2, i2 := run()
	if !equalInts(s1, s2) || len(i1) == 0 || len(i1) != len(i2) || i1[0] != i2[0] {
		t.Errorf("same seed, different runs:\n%v %v\n%v %v", s1, i1, s2, i2)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
