package upstream

import (
	"time"
	"unicode/utf8"
)

// InitParams describes the media announced by INIT.
type InitParams struct {
	// MediaType is the MIME type, e.g. "video/mp4" (required).
	MediaType string
	// MediaCategory is X's category, e.g. "tweet_video". Video and GIF are
	// processed asynchronously (FINALIZE returns processing_info) only when a
	// category is given; without one X finalizes synchronously and refuses
	// large videos.
	MediaCategory string
	// TotalBytes is the exact size of the media (required, ≥ 1). The upload
	// fails if the caller supplies fewer or more bytes.
	TotalBytes int64
	// AdditionalOwners are user ids (at most 100) allowed to use the media.
	AdditionalOwners []string
	// Shared marks media that may be shared across direct messages.
	Shared bool
}

// maxOwners is X's limit on additional_owners.
const maxOwners = 100

// maxTotalBytes is the largest total_bytes X's OpenAPI allows (16 GiB).
const maxTotalBytes = 17_179_869_184

func (p InitParams) validate() error {
	switch {
	case p.MediaType == "":
		return invalidf("media type is required")
	case !printableASCII(p.MediaType, 255):
		return invalidf("media type is not a short printable ASCII string")
	case p.MediaCategory != "" && !printableASCII(p.MediaCategory, 64):
		return invalidf("media category is not a short printable ASCII string")
	case p.TotalBytes < 1:
		return invalidf("total bytes must be at least 1, got %d", p.TotalBytes)
	case p.TotalBytes > maxTotalBytes:
		return invalidf("total bytes %d exceed X's maximum %d", p.TotalBytes, int64(maxTotalBytes))
	case len(p.AdditionalOwners) > maxOwners:
		return invalidf("%d additional owners, X allows %d", len(p.AdditionalOwners), maxOwners)
	}
	for _, o := range p.AdditionalOwners {
		if !validMediaID(o) {
			return invalidf("additional owner %q is not a numeric user id", truncate(o, 32))
		}
	}
	return nil
}

// Media is X's description of uploaded media.
type Media struct {
	// ID is the media id as a decimal string (ids exceed 2^53).
	ID string
	// Key is the media key, e.g. "7_1349803915521482754"; may be empty.
	Key string
	// Size is the media size in bytes as reported by X; 0 when not reported.
	Size int64
	// ExpiresAfterSecs is how long the media id stays usable, as reported.
	ExpiresAfterSecs int64
	// ExpiresAt is the absolute expiry derived from expires_after_secs or
	// expires_at (seconds or milliseconds); zero when unknown.
	ExpiresAt time.Time
	// Processing is X's processing_info; nil means the media is ready.
	Processing *Processing
}

// Processing states X reports. Any other state is kept verbatim.
const (
	StatePending    = "pending"
	StateInProgress = "in_progress"
	StateSucceeded  = "succeeded"
	StateFailed     = "failed"
)

// Processing is X's processing_info for asynchronously processed media.
type Processing struct {
	// State is pending, in_progress, succeeded, failed, or an unknown state
	// kept verbatim.
	State string
	// CheckAfterSecs is when X suggests polling again; 0 when absent.
	CheckAfterSecs int
	// ProgressPercent is 0–100; informative only.
	ProgressPercent int
	// Error is processing_info.error, as X sent it. X has been seen sending
	// it while State is still in_progress; this package reports the answer
	// as it came and leaves the decision to the caller.
	Error *ProcessingError
}

func validMediaID(id string) bool {
	if id == "" || len(id) > 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

func printableASCII(s string, maxLen int) bool {
	if len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut
// with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
