// Command mediagwctl is the command line for mediagw: it uploads files
// (detecting their type, declaring their SHA-256, resuming after a dropped
// connection), waits for X's processing, and reads the state of media and
// uploads. On a terminal it draws a progress bar per file on stderr; with
// --json it prints one JSON object per file on stdout for scripts.
//
// Exit codes: 0 done, 1 an upload or call failed, 2 usage error,
// 3 X failed to process the media.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mediagw/mediagw/service/buildinfo"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitProcessing = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env reads an environment variable; tests pass their own.
type env func(string) string

// run executes one mediagwctl command line and returns its exit code.
func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var fn func(context.Context, []string, env, io.Writer, io.Writer) int
	switch cmd {
	case "upload":
		fn = runUpload
	case "status":
		fn = runStatus
	case "watch":
		fn = runWatch
	case "uploads":
		fn = runUploads
	case "accounts":
		fn = runAccounts
	case "media":
		fn = runMedia // mediacmd.go
	case "subtitles":
		fn = runSubtitles
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mediagwctl: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
	return fn(ctx, rest, getenv, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `mediagwctl is the command line for mediagw.

Usage:
  mediagwctl upload FILE... [--watch] [--json] [-j N]   upload files, resuming after failures
  mediagwctl status MEDIA_ID                           X's processing state of a media id
  mediagwctl watch MEDIA_ID                            follow processing to its end
  mediagwctl uploads KEY                               what mediagw knows of an upload (GetUpload)
  mediagwctl accounts list|status|login|logout [NAME]  X accounts: health, OAuth 2.0 login (PKCE)
  mediagwctl media get|set-alt-text MEDIA_ID [TEXT]    X's lookup of a media; set its alt text
  mediagwctl subtitles attach|detach VIDEO_ID ...      attach or detach a subtitles track
  mediagwctl version                                   the build's version

Run "mediagwctl COMMAND --help" for a command's flags and an example.
Exit codes: 0 done, 1 upload or call failed, 2 usage, 3 processing failed.
`)
}

func versionString() string { return "mediagwctl " + buildinfo.String() }

// parseArgs parses flags and positional arguments in any order (flags may
// follow FILE), up to a "--" after which everything is positional. It
// returns the positional arguments, or an error already reported to the
// flag set's output; flag.ErrHelp means --help was asked for.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		rest := fs.Args()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageExit maps a parse error to an exit code: --help is success.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
