package engine

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"slices"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mergeStart fills the fields a resume or replay may omit from the
// ledger, and refuses fields given with other values than the original's.
func mergeStart(e *ledger.Entry, st *mediagwv1.UploadStart) (*mediagwv1.UploadStart, error) {
	o := e.Start
	differ := func(field string, got, want any) error {
		return apierr.Invalidf("idempotency key %s was started with %s %v, not %v; a new upload needs a new key", apierr.Quote(e.Key), field, want, got)
	}
	m := &mediagwv1.UploadStart{
		MediaType: o.MediaType, TotalBytes: o.TotalBytes, AdditionalOwners: o.AdditionalOwners,
		Shared: o.Shared, Sha256: o.SHA256, IdempotencyKey: e.Key, Account: o.Account,
	}
	m.MediaCategory, _ = ParseCategory(o.Category)
	if v := st.GetMediaType(); v != "" && v != o.MediaType {
		return nil, differ("media_type", apierr.Quote(v), o.MediaType)
	}
	if v := st.GetTotalBytes(); v != 0 && v != o.TotalBytes {
		return nil, differ("total_bytes", v, o.TotalBytes)
	}
	if c := st.GetMediaCategory(); c != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED && categoryNames[c] != o.Category {
		return nil, differ("media_category", categoryNames[c], o.Category)
	}
	if v := st.GetAdditionalOwners(); len(v) > 0 && !slices.Equal(v, o.AdditionalOwners) {
		return nil, differ("additional_owners", apierr.Quote(fmt.Sprint(v)), apierr.Quote(fmt.Sprint(o.AdditionalOwners)))
	}
	if st.GetShared() && !o.Shared {
		return nil, differ("shared", true, false)
	}
	if v := st.GetSha256(); v != "" && v != o.SHA256 {
		return nil, differ("sha256", apierr.Quote(v), apierr.Quote(o.SHA256))
	}
	if v := st.GetAccount(); v != "" && v != o.Account {
		return nil, differ("account", apierr.Quote(v), apierr.Quote(o.Account))
	}
	return m, nil
}

func ledgerStart(s backend.Spec, st *mediagwv1.UploadStart) ledger.Start {
	return ledger.Start{
		MediaType: s.MediaType, Category: s.Category, TotalBytes: s.TotalBytes,
		AdditionalOwners: s.AdditionalOwners, Shared: s.Shared, SHA256: st.GetSha256(), Account: st.GetAccount(),
	}
}

// restoreHash rebuilds a SHA-256 digest from its marshaled state.
func restoreHash(state []byte) (hash.Hash, error) {
	d := sha256.New()
	u, ok := d.(encoding.BinaryUnmarshaler)
	if !ok || len(state) == 0 {
		return nil, errors.New("no hash state")
	}
	if err := u.UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return d, nil
}

// traceparent is the W3C trace context of ctx's span, for span links.
func traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

func parentFrom(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// ledgerError is the error of a ledger that cannot be read or written.
func ledgerError(err error) error {
	if errors.Is(err, ledger.ErrLeaseLost) {
		return status.Error(codes.Aborted, "this stream lost the upload to another one (its ledger lease was taken over)")
	}
	return apierr.Unavailable(err, "mediagw's upload ledger is unavailable; try again shortly")
}

// storedError is a FAILED entry's error.
func storedError(e *ledger.Entry) error {
	code := codes.Unknown
	if e.Error != nil {
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if apierr.CodeName(c) == e.Error.Code {
				code = c
			}
		}
		return status.Errorf(code, "%s (the upload with idempotency key %s failed before; a new attempt needs a new key)", e.Error.Message, apierr.Quote(e.Key))
	}
	return status.Errorf(code, "the upload with idempotency key %s failed before; a new attempt needs a new key", apierr.Quote(e.Key))
}

// interrupted is the caller's error for an interrupted upload: cause's
// code becomes Unavailable (try again: resume), with the upload's state
// as a detail so the caller knows where to resume.
func interrupted(st *mediagwv1.UploadState, cause error) error {
	c := status.Convert(cause)
	code := codes.Unavailable
	if c.Code() == codes.Aborted {
		code = codes.Aborted // superseded: the other stream goes on
	}
	s := status.New(code, fmt.Sprintf("the upload was interrupted (%s) with %d of %d bytes committed at X; resume it with idempotency_key %s and resume_offset %d",
		c.Message(), st.GetCommittedBytes(), st.GetTotalBytes(), apierr.Quote(st.GetIdempotencyKey()), st.GetCommittedBytes()))
	if d, err := s.WithDetails(st); err == nil {
		s = d
	}
	return s.Err()
}

// resumeMismatch refuses a resume_offset that is not the committed bytes.
func resumeMismatch(e *ledger.Entry, off int64) error {
	s := status.New(codes.FailedPrecondition, fmt.Sprintf("resume_offset %d is not where idempotency key %s stands: resume at committed_bytes %d",
		off, apierr.Quote(e.Key), e.Committed))
	if d, err := s.WithDetails(stateOf(e)); err == nil {
		s = d
	}
	return s.Err()
}
