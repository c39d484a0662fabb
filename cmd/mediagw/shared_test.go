package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/redisstore/redistest"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestRedisGoneLongerThanTheLease: an upload whose replica cannot renew
// its lease for a whole TTL (Redis is down) stops with Unavailable at once
// (not when the caller's stream ends); once
// Redis is back the ledger holds at least what was reported committed,
// and the upload resumes byte-exact.
func TestRedisGoneLongerThanTheLease(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t, true)
	const ttl = 600 * time.Millisecond
	e := newEnv(t, xfake.Options{}, "--ledger=redis://"+rs.Addr+"/0", "--lease-ttl="+ttl.String())
	data := media("video/mp4", 1<<20, 61)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(startMsg(keyed("redis-gone", data, true)))
	for off := 0; off < 512<<10; off += 32 << 10 {
		_ = stream.Send(chunkMsg(data[off : off+32<<10]))
	}
	var reported int64
	waitFor(t, func() bool {
		st, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "redis-gone"})
		reported = st.GetCommittedBytes()
		return err == nil && reported > 0
	})
	rs.Stop(t)
	// The stream stays open: the answer comes because mediagw stopped the
	// upload itself.
	err = stream.RecvMsg(&mediagwv1.UploadResponse{})
	// Stopped because its lease was lost, it cannot record the
	// interruption either: the caller learns the ledger is unavailable.
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "ledger") {
		t.Fatalf("the upload of a replica that lost Redis for a lease TTL ended with %v, want Unavailable (the ledger)", err)
	}
	if _, err := e.client.GetUpload(context.Background(), &mediagwv1.GetUploadRequest{IdempotencyKey: "redis-gone"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetUpload while Redis is down: %v, want Unavailable", err)
	}
	rs.Restart(t)
	waitFor(t, func() bool { return e.app.sharedReady() == nil })
	st := e.waitPhase("redis-gone", mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
	if st.GetCommittedBytes() < reported {
		t.Fatalf("committed %d after Redis came back; %d was reported before", st.GetCommittedBytes(), reported)
	}
	resp, err := e.upload(context.Background(), resumeAt("redis-gone", st.GetCommittedBytes()), data[st.GetCommittedBytes():], fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	e.checkStored(resp.GetMediaId(), data)
	if n := e.x.X.Stats().Requests["init"]; n != 1 {
		t.Fatalf("X saw %d INITs, want 1", n)
	}
}

// TestCallerIsolationAcrossReplicas: who uploaded a media id is shared
// state too. Through another replica the uploader sees its media (with
// the account it was uploaded with), and another caller still does not.
func TestCallerIsolationAcrossReplicas(t *testing.T) {
	t.Parallel()
	p := newPolicyEnv(t, testCallers)
	shared := "--ledger=" + redistest.URL(t) + "?prefix=" + redistest.Prefix(t)
	a := startApp(t, p.x.URL, nil, append(p.flags, shared)...)
	b := startApp(t, p.x.URL, nil, append(p.flags, shared)...)
	png := media("image/png", 2000, 71)
	img, err := a.upload(p.as("alice"), pngStart(png, ""), png, fixed(2000))
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.client.GetStatus(p.as("alice"), &mediagwv1.GetStatusRequest{MediaId: img.GetMediaId()})
	if err != nil || st.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED {
		t.Fatalf("alice's image through the other replica: %v %v", st, err)
	}
	if _, err := b.client.GetStatus(p.as("bob"), &mediagwv1.GetStatusRequest{MediaId: img.GetMediaId()}); codeOf(err) != "NotFound" {
		t.Fatalf("bob asking for alice's image through the other replica: %v, want NotFound", err)
	}
	video := media("video/mp4", 100<<10, 72)
	v, err := a.upload(p.as("alice"), &mediagwv1.UploadStart{MediaType: "video/mp4", TotalBytes: int64(len(video))}, video, fixed(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	before := p.rec.count("Bearer brand-token")
	if _, err := b.client.GetStatus(p.as("alice"), &mediagwv1.GetStatusRequest{MediaId: v.GetMediaId()}); err != nil {
		t.Fatalf("alice's video through the other replica: %v", err)
	}
	if p.rec.count("Bearer brand-token") != before+1 {
		t.Fatal("the other replica did not ask X with the account alice's video was uploaded with")
	}
}
