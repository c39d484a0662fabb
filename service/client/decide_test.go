package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// scripted is a transport whose answers a test lists in advance. It
// checks the decisions of the resume loop alone (where to resume, when to
// stop); the other tests run the same loop against the real mediagw.
type scripted struct {
	ledger  []func() (*mediagwv1.UploadState, error)
	uploads []func(offset int64, body []byte) (*mediagwv1.UploadResponse, error)
	offsets []int64
	bodies  [][]byte
}

func (s *scripted) upload(_ context.Context, st *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	b, _ := io.ReadAll(body)
	sent(len(b))
	s.offsets, s.bodies = append(s.offsets, st.GetResumeOffset()), append(s.bodies, b)
	next := s.uploads[0]
	s.uploads = s.uploads[1:]
	return next(st.GetResumeOffset(), b)
}

func (s *scripted) getUpload(context.Context, string) (*mediagwv1.UploadState, error) {
	if len(s.ledger) == 0 {
		return nil, status.Error(codes.NotFound, "unknown key")
	}
	next := s.ledger[0]
	s.ledger = s.ledger[1:]
	return next()
}

func (s *scripted) getStatus(context.Context, string) (*mediagwv1.ProcessingStatus, error) {
	return nil, status.Error(codes.Unimplemented, "")
}

func (s *scripted) watch(context.Context, string, func(*mediagwv1.ProcessingStatus)) error {
	return status.Error(codes.Unimplemented, "")
}

func (s *scripted) close() error { return nil }

func interrupted(committed int64) error {
	st, _ := status.New(codes.Unavailable, "interrupted").WithDetails(&mediagwv1.UploadState{
		Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED, CommittedBytes: committed})
	return st.Err()
}

func mismatch(committed int64) error {
	st, _ := status.New(codes.FailedPrecondition, "resume_offset is not committed_bytes").WithDetails(
		&mediagwv1.UploadState{CommittedBytes: committed})
	return st.Err()
}

func done(int64, []byte) (*mediagwv1.UploadResponse, error) {
	return &mediagwv1.UploadResponse{MediaId: "42"}, nil
}

type step = func(int64, []byte) (*mediagwv1.UploadResponse, error)
type ledgerStep = func() (*mediagwv1.UploadState, error)

func TestResumeDecisions(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	path := filepath.Join(t.TempDir(), "f.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fail := func(err error) step {
		return func(int64, []byte) (*mediagwv1.UploadResponse, error) { return nil, err }
	}
	state := func(st *mediagwv1.UploadState) ledgerStep {
		return func() (*mediagwv1.UploadState, error) { return st, nil }
	}
	for _, tc := range []struct {
		name    string
		c       *scripted
		retries int
		offsets []int64 // resume_offset of each attempt
		err     string  // "" for success
	}{
		{"fresh upload", &scripted{uploads: []step{done}}, 3, []int64{0}, ""},
		{"completed key: no upload", &scripted{ledger: []ledgerStep{state(&mediagwv1.UploadState{
			Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED, Response: &mediagwv1.UploadResponse{MediaId: "42"}})}}, 3, nil, ""},
		{"interrupted key resumes at once", &scripted{ledger: []ledgerStep{state(&mediagwv1.UploadState{
			Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED, CommittedBytes: 4000})}, uploads: []step{done}}, 3, []int64{4000}, ""},
		{"failed key", &scripted{ledger: []ledgerStep{state(&mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED,
			Error: &mediagwv1.UploadError{Code: "INVALID_ARGUMENT", Message: "sha256 mismatch"}})}}, 3, nil, "needs another key"},
		{"Unavailable with committed_bytes", &scripted{uploads: []step{fail(interrupted(3000)), fail(interrupted(7000)), done}},
			3, []int64{0, 3000, 7000}, ""},
		{"broken stream: the ledger says where", &scripted{
			ledger: []ledgerStep{
				func() (*mediagwv1.UploadState, error) { return nil, status.Error(codes.NotFound, "") },
				state(&mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED, CommittedBytes: 5000})},
			uploads: []step{fail(status.Error(codes.Unavailable, "EOF")), done}},
			3, []int64{0, 5000}, ""},
		{"offset corrected by FailedPrecondition", &scripted{uploads: []step{fail(mismatch(2000)), done}}, 3, []int64{0, 2000}, ""},
		{"gives up without progress", &scripted{uploads: []step{fail(interrupted(1000)), fail(interrupted(1000))}},
			1, []int64{0, 1000}, "gave up after 1 retries in a row without progress"},
		{"progress resets the count", &scripted{uploads: []step{
			fail(interrupted(1000)), fail(interrupted(2000)), fail(interrupted(3000)), done}}, 1, []int64{0, 1000, 2000, 3000}, ""},
		{"permanent error", &scripted{uploads: []step{fail(status.Error(codes.InvalidArgument, "bad type"))}}, 3, []int64{0}, "bad type"},
		{"committed beyond the file", &scripted{uploads: []step{fail(interrupted(1 << 40))}}, 3, []int64{0}, "the media has 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{t: tc.c, chunk: DefaultChunkSize, stall: time.Minute, keyPrefix: "t-",
				retry: RetryPolicy{MaxRetries: tc.retries}}
			resp, err := c.Upload(context.Background(), File(path), UploadOptions{MediaType: "video/mp4", IdempotencyKey: "k"})
			if tc.err == "" && (err != nil || resp.MediaID != "42") {
				t.Fatalf("upload: %v, %v", resp, err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if !slices.Equal(tc.c.offsets, tc.offsets) {
				t.Fatalf("attempts at %v, want %v", tc.c.offsets, tc.offsets)
			}
			for i, b := range tc.c.bodies {
				if !bytes.Equal(b, data[tc.offsets[i]:]) {
					t.Fatalf("attempt %d sent %d bytes that are not the file from %d", i, len(b), tc.offsets[i])
				}
			}
		})
	}
}

// TestPlainReaderIsNotReplayed: a plain io.Reader is retried only before
// its first byte was read; after that the error says it cannot resume.
func TestPlainReaderIsNotReplayed(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	s := &scripted{uploads: []step{func(int64, []byte) (*mediagwv1.UploadResponse, error) { return nil, interrupted(4096) }}}
	c := &Client{t: s, chunk: DefaultChunkSize, stall: time.Minute, retry: RetryPolicy{MaxRetries: 3}}
	_, err := c.Upload(context.Background(), Reader(io.MultiReader(bytes.NewReader(data)), int64(len(data))),
		UploadOptions{MediaType: "video/mp4", IdempotencyKey: "k"})
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonNotResumable || len(s.offsets) != 1 {
		t.Fatalf("err %v after %d attempts, want NOT_RESUMABLE after 1", err, len(s.offsets))
	}
	if n, ok := e.Committed(); !ok || n != 4096 {
		t.Fatalf("committed %d %v, want 4096", n, ok)
	}
}

// TestProblemError converts REST problems to the status errors the retry
// rules read.
func TestProblemError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		header    http.Header
		body      string
		code      codes.Code
		committed int64 // -1: no UploadState detail
		retry     time.Duration
	}{
		{"invalid", 400, nil, `{"status":400,"detail":"media_type is image/png but the bytes are video/mp4","code":"INVALID_ARGUMENT"}`, codes.InvalidArgument, -1, 0},
		{"interrupted, number", 503, nil, `{"status":503,"detail":"interrupted","code":"UNAVAILABLE","committed_bytes":4194304}`, codes.Unavailable, 4194304, 0},
		{"mismatch, string", 409, nil, `{"status":409,"detail":"resume_offset 0 is not 1048576","code":"FAILED_PRECONDITION","committed_bytes":"1048576"}`, codes.FailedPrecondition, 1048576, 0},
		{"rate limit", 429, http.Header{"Retry-After": {"7"}}, `{"status":429,"detail":"X rate limit","code":"RESOURCE_EXHAUSTED"}`, codes.ResourceExhausted, -1, 7 * time.Second},
		{"proxy page", 502, nil, `<html>bad gateway</html>`, codes.Unavailable, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			for k, v := range tc.header {
				rec.Header()[k] = v
			}
			rec.WriteHeader(tc.status)
			_, _ = rec.WriteString(tc.body)
			e := convert(problemError(rec.Result()))
			if e.Code != tc.code {
				t.Fatalf("code %v, want %v (%v)", e.Code, tc.code, e)
			}
			n, ok := e.Committed()
			if (tc.committed >= 0) != ok || (ok && n != tc.committed) {
				t.Fatalf("UploadState %v %v, want committed %d", n, ok, tc.committed)
			}
			wantRetry := tc.code == codes.Unavailable || tc.committed >= 0 || tc.retry > 0
			if IsRetryable(e) != wantRetry || e.RetryAfter != tc.retry {
				t.Fatalf("retryable %v after %v; want %v, %v", IsRetryable(e), e.RetryAfter, wantRetry, tc.retry)
			}
		})
	}
}

func TestIsRetryable(t *testing.T) {
	withRetry, _ := status.New(codes.ResourceExhausted, "rate limited").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	quota, _ := status.New(codes.ResourceExhausted, "over quota").WithDetails(
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "bytes_per_hour", Description: "d"}}},
		&errdetails.ErrorInfo{Domain: ErrorDomain, Reason: "QUOTA"})
	for _, tc := range []struct {
		err   error
		retry bool
		wait  time.Duration
	}{
		{status.Error(codes.Unavailable, "x"), true, 0},
		{status.Error(codes.Aborted, "x"), true, 0},
		{status.Error(codes.DeadlineExceeded, "x"), true, 0},
		{withRetry.Err(), true, 3 * time.Second},
		{quota.Err(), false, 0},
		{status.Error(codes.ResourceExhausted, "message larger than max"), false, 0},
		{status.Error(codes.FailedPrecondition, "no detail"), false, 0},
		{status.Error(codes.InvalidArgument, "x"), false, 0},
		{status.Error(codes.Unauthenticated, "x"), false, 0},
		{status.Error(codes.PermissionDenied, "x"), false, 0},
		{status.Error(codes.NotFound, "x"), false, 0},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`), false, 0},
		{localError(errors.New("disk"), ""), false, 0},
		{context.Canceled, false, 0},
	} {
		e := convert(tc.err)
		if IsRetryable(tc.err) != tc.retry || e.RetryAfter != tc.wait {
			t.Errorf("IsRetryable(%v) = %v after %v; want %v, %v", tc.err, IsRetryable(tc.err), e.RetryAfter, tc.retry, tc.wait)
		}
	}
	e := convert(quota.Err())
	if e.Reason != "QUOTA" || len(e.Quota) != 1 || e.Quota[0].Subject != "bytes_per_hour" {
		t.Fatalf("quota error read as %+v", e)
	}
}

func TestDeriveKey(t *testing.T) {
	const sum = "e016334a96574943f3f09696f1a48ea76c6a9c04eccbe14d612bdc0b6b74c0ca"
	in := KeyInput{SHA256: sum, Size: 100, MediaType: "video/mp4"}
	base := DeriveKey("ctl-", in)
	if base != DeriveKey("ctl-", in) || !ValidKey(base) || len(base) != 36 {
		t.Fatalf("key %q is not a deterministic valid mediagw key", base)
	}
	vary := []func(*KeyInput){
		func(k *KeyInput) { k.SHA256 = strings.Replace(sum, "e", "f", 1) },
		func(k *KeyInput) { k.Size = 101 },
		func(k *KeyInput) { k.Account = "brand" },
		func(k *KeyInput) { k.MediaType = "video/quicktime" },
		func(k *KeyInput) { k.Category = mediagwv1.MediaCategory_MEDIA_CATEGORY_DM_VIDEO },
		func(k *KeyInput) { k.XToken = "user-a" },
		func(k *KeyInput) { k.XToken = "user-b" },
	}
	var keys []string
	for _, v := range vary {
		k := in
		v(&k)
		keys = append(keys, DeriveKey("ctl-", k))
	}
	for i, k := range keys {
		if k == base || slices.Index(keys, k) != i {
			t.Fatalf("key %d (%q) collides", i, k)
		}
		if strings.Contains(k, "user-") {
			t.Fatalf("key %q shows the X token", k)
		}
	}
}
