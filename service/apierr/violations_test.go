package apierr

import (
	"encoding/json"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var mediaRefusal = &Error{Code: codes.InvalidArgument, Msg: "the media breaks 2 of X's rules",
	Violations: []Violation{
		{Reason: "VIDEO_TOO_LONG", Field: "duration", Limit: "140s", Actual: "150.2s", Description: "Shorten the video."},
		{Reason: "UNSUPPORTED_CHROMA", Field: "chroma_format", Actual: "4:4:4", Description: "Encode as 4:2:0."},
	}}

// A refusal with violations carries one BadRequest and one ErrorInfo per
// rule, with the limit and actual value as metadata.
func TestViolationsToStatus(t *testing.T) {
	st := status.Convert(ToStatus(mediaRefusal))
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v", st.Code())
	}
	var br *errdetails.BadRequest
	var infos []*errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			br = d
		case *errdetails.ErrorInfo:
			infos = append(infos, d)
		}
	}
	if br == nil || len(br.GetFieldViolations()) != 2 || br.GetFieldViolations()[0].GetField() != "duration" ||
		br.GetFieldViolations()[1].GetReason() != "UNSUPPORTED_CHROMA" {
		t.Fatalf("BadRequest %v", br)
	}
	if len(infos) != 2 || infos[0].GetReason() != "VIDEO_TOO_LONG" || infos[0].GetMetadata()["limit"] != "140s" ||
		infos[0].GetMetadata()["actual"] != "150.2s" || infos[0].GetDomain() != Domain {
		t.Fatalf("ErrorInfo %v", infos)
	}
	if _, has := infos[1].GetMetadata()["limit"]; has || infos[1].GetMetadata()["actual"] != "4:4:4" {
		t.Fatalf("a rule without a number has no limit: %v", infos[1].GetMetadata())
	}
}

// REST answers violations 422 with the rules listed, and a client reads
// the same details back.
func TestViolationsProblem(t *testing.T) {
	p := NewProblem(mediaRefusal)
	if p.Status != http.StatusUnprocessableEntity || p.Title != "Unprocessable Entity" || p.Code != "INVALID_ARGUMENT" {
		t.Fatalf("problem %+v", p)
	}
	if p.Reason != "VIDEO_TOO_LONG" || len(p.Violations) != 2 {
		t.Fatalf("problem %+v", p)
	}
	if v := p.Violations[0]; v != (ProblemViolation{Reason: "VIDEO_TOO_LONG", Field: "duration", Limit: "140s", Actual: "150.2s", Detail: "Shorten the video."}) {
		t.Fatalf("violation %+v", v)
	}
	// An InvalidArgument without violations stays 400.
	if p := NewProblem(Invalidf("media_type is required")); p.Status != http.StatusBadRequest || p.Violations != nil {
		t.Fatalf("plain refusal %+v", p)
	}
	body := mustJSON(t, p)
	back := status.Convert(FromProblem(p.Status, nil, body))
	again := NewProblem(back.Err())
	if again.Status != p.Status || len(again.Violations) != 2 || again.Violations[1] != p.Violations[1] || again.Reason != p.Reason {
		t.Fatalf("round trip %+v, want %+v", again, p)
	}
	n := 0
	for _, d := range back.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("round trip has %d ErrorInfo, want 2", n)
	}
}

func mustJSON(t *testing.T, p Problem) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
