package ledger

import (
	"context"
	"time"
)

// Actions is what an upload asked mediagw to do on the media once it is
// usable (UploadStart.metadata and subtitles) and how far that went. It is
// part of the Entry; entries written before it existed have none.
type Actions struct {
	// Metadata is the MediaMetadata to set (protojson); nil when none.
	Metadata []byte      `json:"metadata,omitempty"`
	MetaSt   ActionState `json:"metadata_state,omitzero"`
	// Subtitles are the tracks to attach, in order.
	Subtitles []SubtitlesAction `json:"subtitles,omitempty"`
	// Account is the X account the upload used; UserToken is set when it
	// used the caller's own X token (which is never stored).
	Account   string `json:"account,omitempty"`
	UserToken bool   `json:"user_token,omitempty"`
}

// SubtitlesAction is one track to attach and its state.
type SubtitlesAction struct {
	MediaID      string      `json:"media_id"`
	LanguageCode string      `json:"language_code"`
	DisplayName  string      `json:"display_name,omitempty"`
	State        ActionState `json:"state"`
}

// ActionState is where one call mediagw makes after an upload stands.
type ActionState struct {
	// Step is PENDING, SENDING (recorded before the call goes to X: a
	// holder that finds it does not know whether X applied it), APPLIED or
	// FAILED.
	Step string `json:"step,omitempty"`
	// Error is X's reason, once FAILED.
	Error *Error `json:"error,omitempty"`
	// Attempts counts the calls sent.
	Attempts int `json:"attempts,omitempty"`
	// Since is when SENDING was recorded: until the call's timeout has
	// passed since then, the call may still be in flight at X.
	Since time.Time `json:"since,omitzero"`
}

// The steps of an ActionState.
const (
	StepPending = "PENDING"
	StepSending = "SENDING"
	StepApplied = "APPLIED"
	StepFailed  = "FAILED"
)

// Open reports whether the action still has work to do.
func (s ActionState) Open() bool { return s.Step == StepPending || s.Step == StepSending }

// Open reports whether any action of a still has work to do.
func (a *Actions) Open() bool {
	if a == nil {
		return false
	}
	if a.Metadata != nil && a.MetaSt.Open() {
		return true
	}
	for _, s := range a.Subtitles {
		if s.State.Open() {
			return true
		}
	}
	return false
}

// Scanner is a Ledger that can list its entries (the bbolt and Redis
// ledgers are): mediagw finds the uploads whose actions are still open
// after a restart or a replica's death with it.
type Scanner interface {
	// Scan calls fn with every entry and the key it is stored under (not
	// Entry.Key, the caller's key), in no particular order, until fn
	// returns false.
	Scan(ctx context.Context, fn func(key string, e *Entry) bool) error
}

// ActionsPending reports whether e's upload completed and its actions
// still have work to do: the entries a PendingScanner lists. An upload
// that did not complete (yet) has nothing to apply them to.
func (e *Entry) ActionsPending() bool {
	return e != nil && e.Phase == PhaseCompleted && e.Actions.Open()
}

// PendingScanner is a Scanner that also keeps an index of the keys whose
// entry's actions are pending (Entry.ActionsPending), written in the same
// transaction or script as the entry itself, so that listing them reads
// those entries only, not the whole ledger.
type PendingScanner interface {
	Scanner
	// ScanPending calls fn with every entry whose actions are pending and
	// the key it is stored under, in no particular order, until fn returns
	// false; it reads no other entry (beyond stale index members, which it
	// skips). Entries that a store written before the index existed holds
	// are listed too: the implementation indexes them first.
	ScanPending(ctx context.Context, fn func(key string, e *Entry) bool) error
}
