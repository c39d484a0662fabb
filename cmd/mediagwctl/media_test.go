package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pngMagic = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

func TestUploadAltTextAndMediaCommands(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		path, _ := writeMedia(t, "photo.png", pngMagic, 5000, 31)
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", path, "--json", "--alt-text", "A lighthouse at dusk", "--sensitive", "other"}, flags...)...)
		if code != exitOK {
			t.Fatalf("upload: exit %d\n%s", code, stderr)
		}
		id := jsonResults(t, stdout)[0].MediaID
		m := st.x.Media(t, id)
		if m.MetadataRequests != 1 || m.Metadata.AltText.Text != "A lighthouse at dusk" || !m.Metadata.SensitiveMediaWarning.Other {
			t.Fatalf("X holds %d metadata calls, %+v", m.MetadataRequests, m.Metadata)
		}
		// The same command again replays the key: nothing more reaches X.
		if code, _, stderr := ctl(t, nil, append([]string{"upload", path, "--alt-text", "A lighthouse at dusk", "--sensitive", "other"}, flags...)...); code != exitOK {
			t.Fatalf("upload again: exit %d\n%s", code, stderr)
		}
		if m := st.x.Media(t, id); m.MetadataRequests != 1 {
			t.Fatalf("%d metadata calls after a replay, want 1", m.MetadataRequests)
		}
		code, stdout, stderr = ctl(t, nil, append([]string{"media", "get", id}, flags...)...)
		var info map[string]any
		if code != exitOK || json.Unmarshal([]byte(stdout), &info) != nil || info["alt_text"] != "A lighthouse at dusk" || info["type"] != "photo" {
			t.Fatalf("media get: exit %d %s %s", code, stdout, stderr)
		}
		if code, _, stderr := ctl(t, nil, append([]string{"media", "set-alt-text", id, "A lighthouse at night"}, flags...)...); code != exitOK {
			t.Fatalf("set-alt-text: exit %d %s", code, stderr)
		}
		if m := st.x.Media(t, id); m.MetadataRequests != 2 || m.Metadata.AltText.Text != "A lighthouse at night" {
			t.Fatalf("after set-alt-text X holds %d calls, %+v", m.MetadataRequests, m.Metadata.AltText)
		}
	})
}

func TestUploadWithSubtitles(t *testing.T) {
	t.Parallel()
	transports(t, newDefaultStack, func(t *testing.T, st *stack, flags []string) {
		video, _ := writeMedia(t, "talk.mp4", mp4Magic, 300<<10, 32)
		srt := filepath.Join(t.TempDir(), "talk.srt")
		if err := os.WriteFile(srt, []byte("1\n00:00:00,000 --> 00:00:02,000\nHello\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := ctl(t, nil, append([]string{"upload", video, "--watch", "--json", "--alt-text", "A talk",
			"--subtitles", srt, "--subtitles-language", "EN", "--subtitles-name", "English"}, flags...)...)
		if code != exitOK {
			t.Fatalf("upload: exit %d\n%s", code, stderr)
		}
		id := jsonResults(t, stdout)[0].MediaID
		deadline := time.Now().Add(20 * time.Second)
		for {
			m := st.x.Media(t, id)
			if m.SubtitlesCreateRequests == 1 && m.MetadataRequests == 1 {
				if len(m.Subtitles) != 1 || m.Subtitles[0].LanguageCode != "EN" || m.Subtitles[0].DisplayName != "English" || m.Metadata.AltText.Text != "A talk" {
					t.Fatalf("X holds %+v", m)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("X holds %d subtitles and %d metadata calls 20s after the upload", m.SubtitlesCreateRequests, m.MetadataRequests)
			}
			time.Sleep(20 * time.Millisecond)
		}
		track := st.x.Media(t, id).Subtitles[0].MediaID
		if code, _, stderr := ctl(t, nil, append([]string{"subtitles", "detach", id, "EN"}, flags...)...); code != exitOK {
			t.Fatalf("detach: exit %d %s", code, stderr)
		}
		if code, _, stderr := ctl(t, nil, append([]string{"subtitles", "attach", id, track, "--language", "FR", "--name", "Français"}, flags...)...); code != exitOK {
			t.Fatalf("attach: exit %d %s", code, stderr)
		}
		if m := st.x.Media(t, id); len(m.Subtitles) != 1 || m.Subtitles[0].LanguageCode != "FR" || m.SubtitlesDeleteRequests != 1 {
			t.Fatalf("X holds %+v", m.Subtitles)
		}
	})
}

func TestMediaFlagRefusals(t *testing.T) {
	t.Parallel()
	st := newDefaultStack(t)
	path, _ := writeMedia(t, "p.png", pngMagic, 3000, 33)
	srt := filepath.Join(t.TempDir(), "t.srt")
	_ = os.WriteFile(srt, []byte("1\n00:00:00,000 --> 00:00:01,000\nx\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"upload", path, "--alt-text", strings.Repeat("é", 1001)}, "at most 1000"},
		{[]string{"upload", path, "--subtitles", srt, "--subtitles-language", "en"}, "two upper-case letters"},
		{[]string{"upload", path, "--sensitive", "violent"}, "adult, graphic or other"},
		{[]string{"subtitles", "detach", "1", "en"}, "two upper-case letters"},
	} {
		before := st.xRequests()
		code, _, stderr := ctl(t, nil, append(tc.args, "--server", st.grpcAddr)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 naming %q", tc.args[:2], code, stderr, tc.want)
		}
		if n := st.xRequests() - before; n != 0 {
			t.Errorf("%v: %d X requests, want 0", tc.args[:2], n)
		}
	}
}
