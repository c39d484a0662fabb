package client

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// keyPattern is the idempotency key syntax mediagw accepts.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,128}$`)

// ValidKey says whether key is an idempotency key mediagw accepts: 1 to
// 128 characters of A-Z a-z 0-9 . _ ~ : -.
func ValidKey(key string) bool { return keyPattern.MatchString(key) }

// KeyInput is what a derived idempotency key covers: everything that
// tells one upload from another on the caller's side.
type KeyInput struct {
	// SHA256 is the hex SHA-256 of the whole media.
	SHA256 string
	// Size is its length in bytes.
	Size int64
	// MediaType and Category are what the upload declares.
	MediaType string
	Category  mediagwv1.MediaCategory
	// Account is the configured X account named (empty: the caller's
	// default).
	Account string
	// XToken is the per-call X user token, if any. Only its SHA-256 goes
	// into the key, so two X users uploading the same bytes never share a
	// key, and the key never reveals the token.
	XToken string
}

// DeriveKey returns prefix followed by 32 hex digits of a SHA-256 over
// in: the same bytes uploaded to the same account, as the same X user,
// type and category get the same key, so uploading again resumes or
// replays the upload instead of repeating it; any other upload gets
// another. Without an X token the key is the one earlier mediagwctl
// versions derived (with prefix "ctl-"). mediagw scopes keys by caller
// (its bearer identity) as well.
func DeriveKey(prefix string, in KeyInput) string {
	cat := ""
	if in.Category != mediagwv1.MediaCategory_MEDIA_CATEGORY_UNSPECIFIED {
		cat = in.Category.String()
	}
	parts := []string{strings.ToLower(in.SHA256), strconv.FormatInt(in.Size, 10), in.Account, in.MediaType, cat}
	if in.XToken != "" {
		t := sha256.Sum256([]byte(in.XToken))
		parts = append(parts, "x="+hex.EncodeToString(t[:]))
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, ":")))
	return prefix + hex.EncodeToString(sum[:16])
}
