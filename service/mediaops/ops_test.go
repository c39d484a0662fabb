package mediaops

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/ledger"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var pending = &mediagwv1.ProcessingStatus{State: mediagwv1.ProcessingState_PROCESSING_STATE_PENDING}

func TestImageMetadataAppliedOnceAtCompletion(t *testing.T) {
	e := newEnv(t, newFakeX(), "v2")
	a := plan(t, e, alice, &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("a red bicycle")}}, "tweet_image")
	got := e.completed(t, alice, "k1", "101", "tweet_image", nil, a)
	if s := got.GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_APPLIED {
		t.Fatalf("metadata state %v, want APPLIED", s)
	}
	// A replay of the key (Completed again) sends nothing.
	resp := &mediagwv1.UploadResponse{MediaId: "101", MediaKey: "7_101"}
	got = e.ops.Completed(context.Background(), alice, "k1", "tweet_image", resp)
	if s := got.GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_APPLIED {
		t.Fatalf("replayed metadata state %v, want APPLIED", s)
	}
	if sets, _, _ := e.x.counts(); sets != 1 {
		t.Fatalf("%d metadata calls, want 1", sets)
	}
	if en := e.entry(t, "k1"); en.Actions.MetaSt.Step != ledger.StepApplied || en.Actions.MetaSt.Attempts != 1 {
		t.Fatalf("ledger holds %+v", en.Actions.MetaSt)
	}
	if n := e.ended(t, "applied"); n != 1 {
		t.Fatalf("mediagw.media_actions.ended{result=applied} = %d, want 1", n)
	}
}

func TestVideoActionsAppliedAfterSucceededWithoutWatcher(t *testing.T) {
	x := newFakeX()
	x.pendingFor = 3
	e := newEnv(t, x, "v2")
	e.completed(t, alice, "sub", "200", "subtitles", nil, nil)
	start := &mediagwv1.UploadStart{
		Metadata:  &mediagwv1.MediaMetadata{AltText: ptr("a talk")},
		Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: "200", LanguageCode: "EN", DisplayName: "English"}},
	}
	a := plan(t, e, alice, start, "tweet_video")
	got := e.completed(t, alice, "vid", "201", "tweet_video", pending, a)
	if s := got.GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_PENDING {
		t.Fatalf("metadata state at completion %v, want PENDING", s)
	}
	// Nobody watches: the relay's poll that mediaops started finds the
	// video succeeded, and the calls follow.
	if c := waitCall(t, x); c != "metadata" {
		t.Fatalf("first call %s, want metadata", c)
	}
	if c := waitCall(t, x); c != "subtitles" {
		t.Fatalf("second call %s, want subtitles", c)
	}
	e.ops.Close() // waits for the watch to record its result
	en := e.entry(t, "vid")
	if en.Actions.MetaSt.Step != ledger.StepApplied || en.Actions.Subtitles[0].State.Step != ledger.StepApplied {
		t.Fatalf("ledger holds %+v", en.Actions)
	}
	if sets, attaches, _ := x.counts(); sets != 1 || attaches != 1 {
		t.Fatalf("%d metadata and %d subtitles calls, want 1 and 1", sets, attaches)
	}
}

func TestFailedVideoFailsActionsWithXReason(t *testing.T) {
	x := newFakeX()
	x.state = "failed"
	e := newEnv(t, x, "v2")
	a := plan(t, e, alice, &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("a talk")}}, "tweet_video")
	e.completed(t, alice, "vid", "301", "tweet_video", pending, a)
	e.ops.Close()
	en := e.entry(t, "vid")
	if st := en.Actions.MetaSt; st.Step != ledger.StepFailed || !strings.Contains(st.Error.Message, "InvalidMedia") {
		t.Fatalf("metadata state %+v, want FAILED with X's reason", st)
	}
	// SetMetadata on the failed video is refused before any metadata call.
	_, err := e.ops.SetMetadata(context.Background(), alice, "301", &mediagwv1.MediaMetadata{AltText: ptr("x")})
	if status.Code(apierr.ToStatus(err)) != codes.FailedPrecondition {
		t.Fatalf("SetMetadata on a failed video: %v, want FailedPrecondition", err)
	}
	if sets, _, _ := x.counts(); sets != 0 {
		t.Fatalf("%d metadata calls, want 0", sets)
	}
}

// sending stores an entry whose metadata a dead holder recorded SENDING
// long enough ago for its call to have ended.
func sending(t *testing.T, e *env, key, id, alt string) {
	t.Helper()
	sendingSince(t, e, key, id, alt, time.Now().Add(-time.Hour))
}

// sendingSince is sending with SENDING recorded at since.
func sendingSince(t *testing.T, e *env, key, id, alt string, since time.Time) {
	t.Helper()
	b, _ := protojson.Marshal(&mediagwv1.MediaMetadata{AltText: ptr(alt)})
	a := &ledger.Actions{Metadata: b, MetaSt: ledger.ActionState{Step: ledger.StepSending, Attempts: 1, Since: since}, Account: "main"}
	resp, _ := protojson.Marshal(&mediagwv1.UploadResponse{MediaId: id, MediaKey: "7_" + id})
	e.put(t, &ledger.Entry{Key: "caller's " + key, Phase: ledger.PhaseCompleted, MediaID: id, MediaKey: "7_" + id, Response: resp,
		Start: ledger.Start{Category: "tweet_image"}, Actions: a}, key)
}

func TestSendingIsCheckedWithLookupBeforeAnyResend(t *testing.T) {
	t.Run("applied", func(t *testing.T) {
		x := newFakeX()
		x.alt["7_401"] = "already there"
		e := newEnv(t, x, "v2")
		sending(t, e, "k", "401", "already there")
		e.ops.scan(e.l.(ledger.Scanner))
		if sets, _, lookups := x.counts(); sets != 0 || lookups != 1 {
			t.Fatalf("%d metadata calls and %d lookups, want 0 and 1", sets, lookups)
		}
		if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepApplied {
			t.Fatalf("state %+v, want APPLIED", st)
		}
	})
	t.Run("not applied", func(t *testing.T) {
		x := newFakeX()
		e := newEnv(t, x, "v2")
		sending(t, e, "k", "402", "new text")
		e.ops.scan(e.l.(ledger.Scanner))
		if sets, _, _ := x.counts(); sets != 1 {
			t.Fatalf("%d metadata calls, want 1", sets)
		}
		if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepApplied || st.Attempts != 2 {
			t.Fatalf("state %+v, want APPLIED after 2 attempts", st)
		}
	})
	t.Run("maybe still in flight", func(t *testing.T) {
		// The holder recorded SENDING a moment ago and lost its lease: its
		// call may still reach X, so nothing is looked up or sent until the
		// call's timeout has passed.
		x := newFakeX()
		e := newEnv(t, x, "v2")
		sendingSince(t, e, "k", "404", "new text", time.Now())
		e.ops.scan(e.l.(ledger.Scanner))
		if sets, _, lookups := x.counts(); sets != 0 || lookups != 0 {
			t.Fatalf("%d metadata calls and %d lookups while the call may be in flight, want 0 and 0", sets, lookups)
		}
		if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepSending || st.Attempts != 1 {
			t.Fatalf("state %+v, want SENDING after 1 attempt", st)
		}
		// Past the timeout, it is looked up and sent.
		sendingSince(t, e, "k", "404", "new text", time.Now().Add(-e.ops.cfg.CallTimeout-inFlightGrace))
		e.ops.scan(e.l.(ledger.Scanner))
		if sets, _, lookups := x.counts(); sets != 1 || lookups != 1 {
			t.Fatalf("%d metadata calls and %d lookups once the call's timeout passed, want 1 and 1", sets, lookups)
		}
	})
	t.Run("no lookup", func(t *testing.T) {
		x := newFakeX()
		x.noLookup = true
		e := newEnv(t, x, "v1.1")
		sending(t, e, "k", "403", "text")
		e.ops.scan(e.l.(ledger.Scanner))
		if sets, _, _ := x.counts(); sets != 0 {
			t.Fatalf("%d metadata calls, want 0 (it may have been applied)", sets)
		}
		if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepFailed || st.Error.Code != "UNKNOWN" {
			t.Fatalf("state %+v, want FAILED UNKNOWN", st)
		}
	})
}

func TestOutcomeUnknownIsRecordedThenChecked(t *testing.T) {
	x := newFakeX()
	x.setErr = []error{unknownErr{}}
	e := newEnv(t, x, "v2")
	a := plan(t, e, alice, &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("maybe")}}, "tweet_image")
	got := e.completed(t, alice, "k", "501", "tweet_image", nil, a)
	if s := got.GetMetadata().GetState(); s != mediagwv1.ActionState_ACTION_STATE_PENDING {
		t.Fatalf("state after an unknown outcome %v, want PENDING", s)
	}
	if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepSending || st.Error == nil {
		t.Fatalf("ledger holds %+v, want SENDING with the error", st)
	}
	// The fake applied it: the next pass finds the alt text and sends nothing.
	e.ops.scan(e.l.(ledger.Scanner))
	if sets, _, lookups := x.counts(); sets != 1 || lookups != 1 {
		t.Fatalf("%d metadata calls and %d lookups, want 1 and 1", sets, lookups)
	}
	if st := e.entry(t, "k").Actions.MetaSt; st.Step != ledger.StepApplied {
		t.Fatalf("state %+v, want APPLIED", st)
	}
}

func TestPlanRefusals(t *testing.T) {
	x := newFakeX()
	e := newEnv(t, x, "v2")
	bob := alice
	bob.ID = "bob"
	e.completed(t, alice, "sub", "600", "subtitles", nil, nil)
	e.completed(t, alice, "img", "601", "tweet_image", nil, nil)
	track := func(id, lang string) *mediagwv1.UploadStart {
		return &mediagwv1.UploadStart{Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: id, LanguageCode: lang}}}
	}
	cases := []struct {
		name     string
		start    *mediagwv1.UploadStart
		category string
		unkeyed  bool
		bob      bool
		code     codes.Code
		want     string
	}{
		{"1001-character alt text", &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr(strings.Repeat("é", 1001))}}, "tweet_image", false, false, codes.InvalidArgument, "1000"},
		{"lowercase language code", track("600", "en"), "tweet_video", false, false, codes.InvalidArgument, "upper-case"},
		{"subtitles on an image", track("600", "EN"), "tweet_image", false, false, codes.InvalidArgument, "videos only"},
		{"track that is not subtitles", track("601", "EN"), "tweet_video", false, false, codes.InvalidArgument, "not a subtitles upload"},
		{"another caller's subtitles", track("600", "EN"), "tweet_video", false, true, codes.NotFound, "not uploaded through mediagw by this caller"},
		{"no idempotency key", &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("x")}}, "tweet_image", true, false, codes.InvalidArgument, "idempotency_key"},
		{"metadata that sets nothing", &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{}}, "tweet_image", false, false, codes.InvalidArgument, "sets nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := alice
			if tc.bob {
				c = bob
			}
			_, err := e.ops.Plan(context.Background(), c, tc.start, tc.category, !tc.unkeyed)
			st := status.Convert(apierr.ToStatus(err))
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
				t.Fatalf("Plan: %v %q, want %v naming %q", st.Code(), st.Message(), tc.code, tc.want)
			}
		})
	}
	if sets, attaches, lookups := x.counts(); sets+attaches+lookups != 0 {
		t.Fatalf("%d X calls, want 0", sets+attaches+lookups)
	}
}

func TestSameRefusesOtherActions(t *testing.T) {
	e := newEnv(t, newFakeX(), "v2")
	e.completed(t, alice, "sub", "700", "subtitles", nil, nil)
	start := &mediagwv1.UploadStart{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("one")},
		Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: "700", LanguageCode: "EN"}}}
	a := plan(t, e, alice, start, "tweet_video")
	if err := e.ops.Same(a, start); err != nil {
		t.Fatalf("the same start: %v", err)
	}
	if err := e.ops.Same(a, &mediagwv1.UploadStart{}); err != nil {
		t.Fatalf("a start naming none: %v", err)
	}
	for _, other := range []*mediagwv1.UploadStart{
		{Metadata: &mediagwv1.MediaMetadata{AltText: ptr("two")}, Subtitles: start.Subtitles},
		{Metadata: start.Metadata},
		{Metadata: start.Metadata, Subtitles: []*mediagwv1.SubtitlesTrack{{SubtitlesMediaId: "700", LanguageCode: "FR"}}},
	} {
		if err := e.ops.Same(a, other); status.Code(apierr.ToStatus(err)) != codes.InvalidArgument {
			t.Errorf("Same(%v): %v, want InvalidArgument", other, err)
		}
	}
	if err := e.ops.Same(nil, start); status.Code(apierr.ToStatus(err)) != codes.InvalidArgument {
		t.Errorf("actions on an upload that had none: %v, want InvalidArgument", err)
	}
}
