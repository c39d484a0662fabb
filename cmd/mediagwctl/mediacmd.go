package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

const mediaHelp = `Usage:
  mediagwctl media get MEDIA_ID [flags]
  mediagwctl media set-alt-text MEDIA_ID TEXT [flags]   (TEXT - reads stdin)

get prints X's description of the caller's media (type, dimensions,
duration, alt text, variants, preview image) as one JSON line; X's v1.1
API has no lookup. set-alt-text sets the media's alt text (at most 1000
characters); a processed video must have succeeded first.

Examples:
  mediagwctl media get 1996983731165702761
  mediagwctl media set-alt-text 1996983731165702761 "A red bicycle"

Exit codes: 0 done, 1 the call failed, 2 usage.
`

const subtitlesHelp = `Usage:
  mediagwctl subtitles attach VIDEO_ID SUBTITLES_ID --language EN [--name English] [flags]
  mediagwctl subtitles detach VIDEO_ID LANGUAGE [flags]

attach attaches an uploaded subtitles track (mediagwctl upload track.srt) to
the caller's video once it succeeded; detach removes the video's track in
LANGUAGE. Language codes are two upper-case letters, as X takes them.

Exit codes: 0 done, 1 the call failed, 2 usage.
`

// argsCommand parses the flags of a command that takes n arguments and
// connects; a nil client comes with the exit code.
func argsCommand(name, help string, args []string, n int, getenv env, stderr io.Writer, extra func(*flag.FlagSet)) ([]string, *client.Client, *connOptions, int) {
	o := &connOptions{}
	fs := newFlagSet(name, help, stderr)
	o.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, nil, usageExit(err)
	}
	err = applyEnv(fs, getenv)
	if err == nil {
		err = o.validate()
	}
	if err == nil && len(pos) != n {
		err = fmt.Errorf("want %d arguments, got %d (see mediagwctl %s --help)", n, len(pos), strings.Fields(name)[0])
	}
	var c *client.Client
	if err == nil {
		c, err = newClient(o, nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl %s: %v\n", name, err)
		return nil, nil, nil, exitUsage
	}
	return pos, c, o, exitOK
}

// sub splits "media get ..." into its subcommand and the rest.
func sub(name, help string, args []string, stdout, stderr io.Writer, known ...string) (string, []string, int) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		w := stderr
		code := exitUsage
		if len(args) > 0 {
			w, code = stdout, exitOK
		}
		fmt.Fprint(w, help)
		return "", nil, code
	}
	for _, k := range known {
		if args[0] == k {
			return k, args[1:], exitOK
		}
	}
	fmt.Fprintf(stderr, "mediagwctl %s: unknown subcommand %q (%s)\n", name, args[0], strings.Join(known, ", "))
	return "", nil, exitUsage
}

func runMedia(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	cmd, rest, code := sub("media", mediaHelp, args, stdout, stderr, "get", "set-alt-text")
	if cmd == "" {
		return code
	}
	n := map[string]int{"get": 1, "set-alt-text": 2}[cmd]
	pos, mc, o, code := argsCommand("media "+cmd, mediaHelp, rest, n, getenv, stderr, nil)
	if mc == nil {
		return code
	}
	defer mc.Close()
	ctx = withXToken(ctx, o)
	switch cmd {
	case "get":
		info, err := mc.GetMedia(ctx, &mediagwv1.GetMediaRequest{MediaId: pos[0]})
		if err != nil {
			fmt.Fprintf(stderr, "mediagwctl media get: %s\n", describe(err))
			return exitFailed
		}
		printProto(stdout, info)
	case "set-alt-text":
		text := pos[1]
		if text == "-" {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
			if err != nil {
				fmt.Fprintf(stderr, "mediagwctl media set-alt-text: reading stdin: %v\n", err)
				return exitFailed
			}
			text = strings.TrimRight(string(b), "\r\n")
		}
		if n := utf8.RuneCountInString(text); n > maxAltText || !utf8.ValidString(text) {
			fmt.Fprintf(stderr, "mediagwctl media set-alt-text: the alt text has %d characters (valid UTF-8, at most %d)\n", n, maxAltText)
			return exitUsage
		}
		resp, err := mc.SetMetadata(ctx, &mediagwv1.SetMetadataRequest{MediaId: pos[0], Metadata: &mediagwv1.MediaMetadata{AltText: &text}})
		if err != nil {
			fmt.Fprintf(stderr, "mediagwctl media set-alt-text: %s\n", describe(err))
			return exitFailed
		}
		printProto(stdout, resp)
	}
	return exitOK
}

func runSubtitles(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	cmd, rest, code := sub("subtitles", subtitlesHelp, args, stdout, stderr, "attach", "detach")
	if cmd == "" {
		return code
	}
	var lang, name string
	pos, mc, o, code := argsCommand("subtitles "+cmd, subtitlesHelp, rest, 2, getenv, stderr, func(fs *flag.FlagSet) {
		if cmd == "attach" {
			fs.StringVar(&lang, "language", "", "the track's language: two upper-case letters (EN)")
			fs.StringVar(&name, "name", "", "the track's display name (English)")
		}
	})
	if mc == nil {
		return code
	}
	defer mc.Close()
	ctx = withXToken(ctx, o)
	if cmd == "detach" {
		lang = pos[1]
	}
	if !validLanguage(lang) {
		fmt.Fprintf(stderr, "mediagwctl subtitles %s: language %q: two upper-case letters, as X takes them (EN, FR)\n", cmd, lang)
		return exitUsage
	}
	var err error
	if cmd == "attach" {
		var resp *mediagwv1.AttachSubtitlesResponse
		resp, err = mc.AttachSubtitles(ctx, &mediagwv1.AttachSubtitlesRequest{VideoMediaId: pos[0], SubtitlesMediaId: pos[1], LanguageCode: lang, DisplayName: name})
		if err == nil {
			printProto(stdout, resp)
		}
	} else {
		var resp *mediagwv1.DetachSubtitlesResponse
		resp, err = mc.DetachSubtitles(ctx, &mediagwv1.DetachSubtitlesRequest{VideoMediaId: pos[0], LanguageCode: lang})
		if err == nil {
			printProto(stdout, resp)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl subtitles %s: %s\n", cmd, describe(err))
		return exitFailed
	}
	return exitOK
}
