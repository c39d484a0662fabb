package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
	"github.com/mediagw/mediagw/service/engine"
)

// sniffBytes is how much of a file's start type detection reads (the
// detection needs 16 bytes).
const sniffBytes = 64

// byExtension names the media types that have no magic number mediagw
// checks, by file extension; every other type is told from the bytes.
var byExtension = map[string]string{
	".srt": "text/srt", ".vtt": "text/vtt", ".ts": "video/mp2t", ".m2ts": "video/mp2t",
	".glb": "model/gltf-binary", ".usdz": "model/vnd.usdz+zip",
}

// mediaFile is one file to upload, with what it declares.
type mediaFile struct {
	path      string
	size      int64
	mediaType string
	category  mediagwv1.MediaCategory
	sha256    string
	key       string
}

// inspect opens path, detects its media type (unless mediaType is
// given), hashes it and derives its idempotency key (unless key is given
// or noKey is set) for the X user of xToken, if any. It reads the file
// once, in bounded blocks.
func inspect(path, mediaType string, category mediagwv1.MediaCategory, account, key, xToken string, noKey bool) (*mediaFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	if mediaType == "" {
		mediaType = detectType(path, head[:n])
		if mediaType == "" {
			return nil, fmt.Errorf("cannot tell the media type of %s from its bytes; pass --media-type", path)
		}
	}
	h := sha256.New()
	h.Write(head[:n])
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	m := &mediaFile{path: path, size: fi.Size(), mediaType: mediaType, category: category,
		sha256: hex.EncodeToString(h.Sum(nil))}
	m.key = key
	if m.key == "" && !noKey {
		m.key = deriveKeyAs(m.sha256, m.size, account, m.mediaType, m.category, xToken)
	}
	return m, nil
}

// detectType names the media type of a file from its first bytes, the
// sniffing mediagw holds uploads to, and for the formats it does not
// sniff from the file name's extension.
func detectType(path string, head []byte) string {
	if t := engine.DetectMediaType(head); t != "" {
		return t
	}
	return byExtension[strings.ToLower(filepath.Ext(path))]
}

// deriveKey is the idempotency key of an upload when none is given and
// no X user token is passed: see deriveKeyAs.
func deriveKey(sha256hex string, size int64, account, mediaType string, category mediagwv1.MediaCategory) string {
	return deriveKeyAs(sha256hex, size, account, mediaType, category, "")
}

// deriveKeyAs is the client package's derived key with mediagwctl's
// prefix: the same bytes uploaded to the same account, as the same X user
// (a hash of xToken), type and category get the same key, so running a
// command again resumes or replays the upload instead of repeating it;
// any other upload gets another.
func deriveKeyAs(sha256hex string, size int64, account, mediaType string, category mediagwv1.MediaCategory, xToken string) string {
	return client.DeriveKey("ctl-", client.KeyInput{SHA256: sha256hex, Size: size, MediaType: mediaType,
		Category: category, Account: account, XToken: xToken})
}
