package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/service/inspect/rules"
)

func writeAccounts(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDefaultMediaRules: default_media_rules change the rules of the
// uploads with no named account (key ""), and only theirs; an account's
// media_rules change its own.
func TestDefaultMediaRules(t *testing.T) {
	t.Parallel()
	f, err := ReadAccountsFile(writeAccounts(t, `default_media_rules:
  tweet_video: {max_frame_rate: 120, max_bytes: 16GiB, max_duration: 2h5m, max_height: 2160}
  DM_Video: {max_duration: 10m}
accounts:
  premium:
    token: t
    media_rules:
      tweet_video: {min_aspect_ratio: "1:4"}
  plain:
    token: t
`))
	if err != nil {
		t.Fatal(err)
	}
	byAccount, err := f.MediaRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(byAccount) != 2 || byAccount["plain"] != nil {
		t.Fatalf("rules for %d accounts %v, want \"\" and premium", len(byAccount), byAccount)
	}
	def, builtin := byAccount[""], rules.Default()
	if v := def["tweet_video"]; v.MaxFrameRate != 120 || v.MaxBytes != 16*rules.GiB || time.Duration(v.MaxDuration) != 125*time.Minute ||
		v.MaxHeight != 2160 || v.MaxWidth != builtin["tweet_video"].MaxWidth {
		t.Errorf("default tweet_video %+v", v)
	}
	if time.Duration(def["dm_video"].MaxDuration) != 10*time.Minute || def["dm_video"].MaxBytes != builtin["dm_video"].MaxBytes {
		t.Errorf("default dm_video %+v", def["dm_video"])
	}
	// The named account starts from the built-in rules, not from
	// default_media_rules.
	if p := byAccount["premium"]["tweet_video"]; p.MaxFrameRate != 60 || float64(p.MinAspectRatio) != 0.25 {
		t.Errorf("premium tweet_video %+v", p)
	}

	// A file with only default_media_rules (no named accounts) is valid.
	f, err = ReadAccountsFile(writeAccounts(t, "default_media_rules:\n  tweet_image: {max_bytes: 1MiB}\n"))
	if err != nil || len(f.Accounts) != 0 || f.DefaultMediaRules["tweet_image"].MaxBytes == nil {
		t.Fatalf("%+v %v", f, err)
	}
}

// TestMediaRulesRefused: every mistake in media rules is one line naming
// the file, the line and the field.
func TestMediaRulesRefused(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		"default_media_rule:\n  tweet_video: {}\n":                                              `line 1: unknown key default_media_rule`,
		"default_media_rules:\n  vines: {max_frame_rate: 1}\n":                                  `line 2: default_media_rules: "vines" is not a media category (amplify_video, `,
		"default_media_rules:\n  tweet_video: {max_frame_rat: 1}\n":                             `line 2: default_media_rules.tweet_video: "max_frame_rat" is not a media rule (audio_codecs, `,
		"default_media_rules:\n  tweet_video: {max_bytes: lots}\n":                              `line 2: default_media_rules.tweet_video.max_bytes: byte size "lots" is not a number of bytes`,
		"default_media_rules:\n  tweet_video: {max_duration: 140}\n":                            `line 2: default_media_rules.tweet_video.max_duration: duration "140" is not a non-negative Go duration`,
		"default_media_rules:\n  tweet_video: {max_frame_rate: fast}\n":                         `line 2: default_media_rules.tweet_video.max_frame_rate: "fast" is not a number`,
		"default_media_rules:\n  tweet_video: {max_frame_rate: -1}\n":                           `line 2: default_media_rules.tweet_video.max_frame_rate: -1 is negative`,
		"default_media_rules:\n  tweet_video: {max_width: 1.5}\n":                               `line 2: default_media_rules.tweet_video.max_width: "1.5" is not a whole number`,
		"default_media_rules:\n  tweet_video: {formats: mp4}\n":                                 `line 2: default_media_rules.tweet_video.formats: "mp4" is not a list`,
		"default_media_rules:\n  tweet_video: {square_pixels: maybe}\n":                         `line 2: default_media_rules.tweet_video.square_pixels: "maybe" is not true or false`,
		"default_media_rules:\n  tweet_video: {max_width: 1, max_width: 2}\n":                   `line 2: default_media_rules.tweet_video.max_width is given twice`,
		"default_media_rules:\n  tweet_video: 3\n":                                              `line 2: default_media_rules.tweet_video is a map of rules`,
		"default_media_rules: [tweet_video]\n":                                                  `line 1: default_media_rules maps media categories`,
		"accounts:\n  p:\n    token: t\n    media_rules:\n      tweet_video: {max_bytes: -1}\n": `account "p": line 5: media_rules.tweet_video.max_bytes: byte size "-1"`,
		"accounts:\n  default:\n    token: t\n":                                                 `account "default": "default" is the --x-* credentials' name; choose another (their media rules are default_media_rules)`,
	} {
		path := writeAccounts(t, body)
		_, err := ReadAccountsFile(path)
		if err == nil {
			t.Errorf("%q: accepted", body)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "--accounts "+path+": ") || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
			t.Errorf("%q:\n got %s\nwant --accounts %s: …%s…", body, msg, path, want)
		}
		if _, err := LoadAccounts(path); err == nil {
			t.Errorf("%q: LoadAccounts accepted it", body)
		}
	}
}
