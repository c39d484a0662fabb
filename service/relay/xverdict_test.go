package relay

import (
	"testing"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/backend"
)

// X's processing errors, as recorded (FACTS §4: v1_09, v1_10, v1_11) and
// as X words its size limit, become typed reasons with X's message kept.
func TestViolationOf(t *testing.T) {
	for _, c := range []struct {
		err                          backend.ProcessingError
		reason, field, limit, actual string
	}{
		{backend.ProcessingError{Code: 3, Name: "UnsupportedMedia",
			Message: "Duration 2.minutes+29.seconds+350.milliseconds exceeds max duration of 2.minutes+20.seconds"},
			"VIDEO_TOO_LONG", "duration", "140s", "149.35s"},
		{backend.ProcessingError{Code: 3, Name: "UnsupportedMedia", Message: "Duration 2:29 exceeds max duration of 2:20"},
			"VIDEO_TOO_LONG", "duration", "140s", "149s"},
		{backend.ProcessingError{Code: 3, Name: "UnsupportedMedia", Message: "Duration 0.seconds+200.milliseconds is below min duration of 0.seconds+500.milliseconds"},
			"VIDEO_TOO_SHORT", "duration", "0.5s", "0.2s"},
		{backend.ProcessingError{Code: 1, Name: "InvalidMedia", Message: "File size exceeds 5242880 bytes"},
			"MEDIA_TOO_LARGE", "bytes", "5242880", ""},
		{backend.ProcessingError{Code: 1, Name: "InvalidMedia", Message: "file is invalid"}, ReasonXInvalidMedia, "media", "", ""},
		{backend.ProcessingError{Code: 1, Name: "InvalidMedia", Message: "Unsupported video format"}, ReasonXUnsupportedVideo, "media", "", ""},
		{backend.ProcessingError{Code: 3, Name: "UnsupportedMedia", Message: "something new"}, ReasonXUnsupportedMedia, "media", "", ""},
		{backend.ProcessingError{Code: 7, Name: "Other", Message: "?"}, ReasonXProcessingError, "media", "", ""},
	} {
		st := ToProto(backend.Media{ID: "1", Processing: &backend.Processing{State: "failed", Error: &c.err}})
		v := st.GetViolation()
		if v.GetReason() != c.reason || v.GetField() != c.field || v.GetLimit() != c.limit || v.GetActual() != c.actual {
			t.Errorf("%q: %v, want %s %s limit %q actual %q", c.err.Message, v, c.reason, c.field, c.limit, c.actual)
		}
		if v.GetDescription() != c.err.Message || st.GetError().GetMessage() != c.err.Message ||
			st.GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_FAILED {
			t.Errorf("%q: X's message not kept: %v", c.err.Message, st)
		}
	}
	if st := ToProto(backend.Media{ID: "1", Processing: &backend.Processing{State: "succeeded"}}); st.GetViolation() != nil {
		t.Errorf("a success has a violation: %v", st)
	}
}
