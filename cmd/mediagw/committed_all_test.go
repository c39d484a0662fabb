package main

import (
	"context"
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// TestResumeWithEverySegmentCommitted: a keyed upload with a declared
// sha256 whose stream breaks after X acknowledged every segment (the last
// one short) resumes at total_bytes and finishes: the hash state stored
// is that of all the bytes.
func TestResumeWithEverySegmentCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, xfake.Options{}, "--segment-size=1MiB")
	data := media("video/mp4", 2<<20+123, 75)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := e.client.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(startMsg(keyed("all-acked", data, true))); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if err := stream.Send(chunkMsg(data[off:min(off+1<<20, len(data))])); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return e.getUpload("all-acked").GetCommittedBytes() == int64(len(data)) })
	cancel()
	st := e.waitPhase("all-acked", mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED)
	if c := st.GetCommittedBytes(); c != int64(len(data)) {
		t.Fatalf("interrupted at %d committed bytes, want all %d", c, len(data))
	}
	resp, err := e.upload(context.Background(), resumeAt("all-acked", int64(len(data))), nil, fixed(1<<20))
	if err != nil {
		t.Fatalf("resume at total_bytes: %v", err)
	}
	e.checkStored(resp.GetMediaId(), data)
}
