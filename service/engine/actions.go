package engine

import (
	"context"

	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
)

// Actions is the work done on uploaded media once it is usable (its
// metadata and subtitles, service/mediaops): the engine asks it to check
// what an upload names before INIT, keeps the plan in the upload's ledger
// entry, and tells it of every upload X accepted.
type Actions interface {
	// Plan checks UploadStart.metadata and subtitles for caller c (after
	// admission: c.Auth is the credential the upload uses) and returns them
	// as the ledger keeps them; nil when the start names neither.
	Plan(ctx context.Context, c backend.Caller, start *mediagwv1.UploadStart, category string, keyed bool) (*ledger.Actions, error)
	// Completed is told of an upload X accepted (or a replayed one):
	// entry is its ledger key ("" without an idempotency key). It returns
	// the actions' state for the response.
	Completed(ctx context.Context, c backend.Caller, entry, category string, resp *mediagwv1.UploadResponse) *mediagwv1.MediaActions
	// Proto is the caller's view of a ledger entry's actions.
	Proto(a *ledger.Actions) *mediagwv1.MediaActions
	// Same refuses a resume or replay whose start names other metadata or
	// subtitles than the entry's upload (naming none is allowed).
	Same(a *ledger.Actions, start *mediagwv1.UploadStart) error
}

// errNoActions refuses metadata and subtitles when nothing applies them.
var errNoActions = &apierr.Error{Code: codes.Unimplemented, Msg: "this mediagw does not apply metadata or subtitles named at upload"}

// plan checks what the upload asks to be done once the media is usable.
func (u *upload) plan(ctx context.Context, start *mediagwv1.UploadStart) error {
	if u.e.cfg.Actions == nil {
		if start.GetMetadata() != nil || len(start.GetSubtitles()) > 0 {
			return errNoActions
		}
		return nil
	}
	var err error
	u.actions, err = u.e.cfg.Actions.Plan(ctx, u.caller, start, u.spec.Category, u.keyed)
	return err
}

// sameActions checks a resume's or replay's metadata and subtitles
// against the entry's.
func (u *upload) sameActions(e *ledger.Entry, start *mediagwv1.UploadStart) error {
	if u.e.cfg.Actions == nil {
		return nil
	}
	return u.e.cfg.Actions.Same(e.Actions, start)
}

// completed hands an accepted upload to the actions.
func (u *upload) completed(ctx context.Context, resp *mediagwv1.UploadResponse) {
	if u.e.cfg.Actions == nil || resp == nil {
		return
	}
	if a := u.e.cfg.Actions.Completed(ctx, u.caller, u.entryKey, u.spec.Category, resp); a != nil {
		resp.Actions = a
	}
}
