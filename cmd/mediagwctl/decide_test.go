package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// scripted is a client whose answers a test lists in advance. It checks
// the decisions of the resume loop alone (where to resume, when to stop);
// the end-to-end tests run the same loop against the real mediagw.
type scripted struct {
	ledger  []func() (*mediagwv1.UploadState, error)
	uploads []func(offset int64, body []byte) (*mediagwv1.UploadResponse, error)
	offsets []int64
	bodies  [][]byte
}

func (s *scripted) Upload(_ context.Context, st *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	b, _ := io.ReadAll(body)
	sent(len(b))
	s.offsets, s.bodies = append(s.offsets, st.GetResumeOffset()), append(s.bodies, b)
	next := s.uploads[0]
	s.uploads = s.uploads[1:]
	return next(st.GetResumeOffset(), b)
}

func (s *scripted) GetUpload(context.Context, string) (*mediagwv1.UploadState, error) {
	if len(s.ledger) == 0 {
		return nil, status.Error(codes.NotFound, "unknown key")
	}
	next := s.ledger[0]
	s.ledger = s.ledger[1:]
	return next()
}

func (s *scripted) GetStatus(context.Context, string) (*mediagwv1.ProcessingStatus, error) {
	return nil, status.Error(codes.Unimplemented, "")
}

func (s *scripted) WatchStatus(context.Context, string, func(*mediagwv1.ProcessingStatus)) error {
	return status.Error(codes.Unimplemented, "")
}

func (s *scripted) Close() error { return nil }

type nopProgress struct{}

func (nopProgress) at(int64)               {}
func (nopProgress) add(int, time.Duration) {}

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

func TestResumeDecisions(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	path := filepath.Join(t.TempDir(), "f.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mediaFile{path: path, size: int64(len(data)), mediaType: "video/mp4", key: "k"}
	fail := func(err error) func(int64, []byte) (*mediagwv1.UploadResponse, error) {
		return func(int64, []byte) (*mediagwv1.UploadResponse, error) { return nil, err }
	}
	for _, tc := range []struct {
		name    string
		c       *scripted
		retries int
		offsets []int64 // resume_offset of each attempt
		err     string  // "" for success
	}{
		{"fresh upload", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){done}}, 3, []int64{0}, ""},
		{"completed key: no upload", &scripted{ledger: []func() (*mediagwv1.UploadState, error){func() (*mediagwv1.UploadState, error) {
			return &mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_COMPLETED, Response: &mediagwv1.UploadResponse{MediaId: "42"}}, nil
		}}}, 3, nil, ""},
		{"interrupted key resumes at once", &scripted{ledger: []func() (*mediagwv1.UploadState, error){func() (*mediagwv1.UploadState, error) {
			return &mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED, CommittedBytes: 4000}, nil
		}}, uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){done}}, 3, []int64{4000}, ""},
		{"failed key", &scripted{ledger: []func() (*mediagwv1.UploadState, error){func() (*mediagwv1.UploadState, error) {
			return &mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_FAILED, Error: &mediagwv1.UploadError{Code: "INVALID_ARGUMENT", Message: "sha256 mismatch"}}, nil
		}}}, 3, nil, "needs another key"},
		{"Unavailable with committed_bytes", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(interrupted(3000)), fail(interrupted(7000)), done}}, 3, []int64{0, 3000, 7000}, ""},
		{"broken stream: the ledger says where", &scripted{
			ledger: []func() (*mediagwv1.UploadState, error){
				func() (*mediagwv1.UploadState, error) { return nil, status.Error(codes.NotFound, "") },
				func() (*mediagwv1.UploadState, error) {
					return &mediagwv1.UploadState{Phase: mediagwv1.UploadPhase_UPLOAD_PHASE_INTERRUPTED, CommittedBytes: 5000}, nil
				}},
			uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){fail(status.Error(codes.Unavailable, "EOF")), done}},
			3, []int64{0, 5000}, ""},
		{"offset corrected by FailedPrecondition", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(mismatch(2000)), done}}, 3, []int64{0, 2000}, ""},
		{"gives up without progress", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(interrupted(1000)), fail(interrupted(1000))}}, 1, []int64{0, 1000}, "run the same command again"},
		{"progress resets the count", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(interrupted(1000)), fail(interrupted(2000)), fail(interrupted(3000)), done}}, 1, []int64{0, 1000, 2000, 3000}, ""},
		{"permanent error", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(status.Error(codes.InvalidArgument, "bad type"))}}, 3, []int64{0}, "bad type"},
		{"committed beyond the file", &scripted{uploads: []func(int64, []byte) (*mediagwv1.UploadResponse, error){
			fail(interrupted(1 << 40))}}, 3, []int64{0}, "the file has 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var notes []string
			u := &uploader{c: tc.c, retries: tc.retries, stall: time.Minute,
				notify:  func(f string, a ...any) { notes = append(notes, f) },
				backoff: func() backoff.BackOff { return &backoff.ZeroBackOff{} }}
			resp, err := u.upload(context.Background(), m, nopProgress{})
			if tc.err == "" && (err != nil || resp.GetMediaId() != "42") {
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
