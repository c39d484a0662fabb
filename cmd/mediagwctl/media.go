package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

// maxAltText is X's bound on alt text, in characters.
const maxAltText = 1000

// uploadActions are the upload flags of the metadata and subtitles
// mediagw applies once the media is usable.
type uploadActions struct {
	altText     string
	altTextFile string
	sensitive   string
	subtitles   string
	subLang     string
	subName     string

	md    *mediagwv1.MediaMetadata
	track *mediagwv1.SubtitlesTrack // set once the subtitles file is uploaded
}

func (a *uploadActions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.altText, "alt-text", "", "alt text set on the media once it is usable (at most 1000 characters)")
	fs.StringVar(&a.altTextFile, "alt-text-file", "", "read the alt text from this file (UTF-8)")
	fs.StringVar(&a.sensitive, "sensitive", "", "sensitive-media warnings: adult, graphic, other (comma-separated)")
	fs.StringVar(&a.subtitles, "subtitles", "", "SRT or WebVTT file uploaded first and attached to the video once it succeeded")
	fs.StringVar(&a.subLang, "subtitles-language", "", "language of --subtitles: two upper-case letters (EN)")
	fs.StringVar(&a.subName, "subtitles-name", "", "display name of --subtitles (English)")
}

// validate checks the flags before anything is sent.
func (a *uploadActions) validate() error {
	if a.altText != "" && a.altTextFile != "" {
		return errors.New("give --alt-text or --alt-text-file, not both")
	}
	alt, have := a.altText, a.altText != ""
	if a.altTextFile != "" {
		b, err := os.ReadFile(a.altTextFile)
		if err != nil {
			return fmt.Errorf("--alt-text-file: %w", err)
		}
		alt, have = strings.TrimRight(string(b), "\r\n"), true
	}
	if have {
		if !utf8.ValidString(alt) {
			return errors.New("the alt text is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(alt); n > maxAltText {
			return fmt.Errorf("the alt text has %d characters; X takes at most %d", n, maxAltText)
		}
		a.md = &mediagwv1.MediaMetadata{AltText: &alt}
	}
	if a.sensitive != "" {
		w := &mediagwv1.SensitiveMediaWarning{}
		for _, f := range strings.Split(a.sensitive, ",") {
			switch strings.TrimSpace(f) {
			case "adult":
				w.AdultContent = true
			case "graphic":
				w.GraphicViolence = true
			case "other":
				w.Other = true
			default:
				return fmt.Errorf("--sensitive %q: name adult, graphic or other", f)
			}
		}
		if a.md == nil {
			a.md = &mediagwv1.MediaMetadata{}
		}
		a.md.SensitiveMediaWarning = w
	}
	switch {
	case a.subtitles == "" && (a.subLang != "" || a.subName != ""):
		return errors.New("--subtitles-language and --subtitles-name go with --subtitles")
	case a.subtitles != "" && !validLanguage(a.subLang):
		return fmt.Errorf("--subtitles-language %q: two upper-case letters, as X takes them (EN, FR)", a.subLang)
	}
	return nil
}

func validLanguage(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// prepare uploads the subtitles file, when one is given, before the videos.
func (a *uploadActions) prepare(ctx context.Context, u *uploader, account, xToken string) error {
	if a.subtitles == "" {
		return nil
	}
	m, err := inspect(a.subtitles, "", mediagwv1.MediaCategory_MEDIA_CATEGORY_SUBTITLES, account, "", xToken, false)
	if err != nil {
		return fmt.Errorf("--subtitles: %w", err)
	}
	resp, err := u.upload(ctx, m, noProgress{})
	if err != nil {
		return fmt.Errorf("uploading --subtitles %s: %s", a.subtitles, describe(err))
	}
	a.track = &mediagwv1.SubtitlesTrack{SubtitlesMediaId: resp.GetMediaId(), LanguageCode: a.subLang, DisplayName: a.subName}
	return nil
}

// rekey makes the derived idempotency key of m depend on the metadata and
// subtitles too, so that the same file with other alt text is another
// upload. A key given with --idempotency-key stands.
func (a *uploadActions) rekey(m *mediaFile, given string) {
	if given != "" || m.key == "" || a == nil || a.md == nil && a.track == nil {
		return
	}
	b, _ := protojson.Marshal(&mediagwv1.UploadStart{Metadata: a.md, Subtitles: a.tracks()})
	sum := sha256.Sum256(append([]byte(m.key+":"), b...))
	m.key = "ctl-" + hex.EncodeToString(sum[:16])
}

func (a *uploadActions) tracks() []*mediagwv1.SubtitlesTrack {
	if a.track == nil {
		return nil
	}
	return []*mediagwv1.SubtitlesTrack{a.track}
}

// decorate adds the metadata and subtitles to an upload's options.
func (a *uploadActions) decorate(o *client.UploadOptions) {
	if a == nil {
		return
	}
	o.Metadata, o.Subtitles = a.md, a.tracks()
}

// noProgress shows nothing.
type noProgress struct{}

func (noProgress) at(int64)               {}
func (noProgress) add(int, time.Duration) {}
