package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
)

const statusHelp = `Usage: mediagwctl status MEDIA_ID [flags]

Prints X's processing state of MEDIA_ID once, as one JSON line.

Example:
  mediagwctl status 1996983731165702761

Exit codes: 0 known (pending, in progress or succeeded), 1 the call failed,
2 usage, 3 processing failed.
`

const watchHelp = `Usage: mediagwctl watch MEDIA_ID [flags]

Follows X's processing of MEDIA_ID to its end: one JSON line per change
on stdout and, on a terminal, a progress bar on stderr. A dropped stream
is reconnected with backoff.

Example:
  mediagwctl watch 1996983731165702761

Exit codes: 0 succeeded, 1 the call failed, 2 usage, 3 processing failed.
`

const uploadsHelp = `Usage: mediagwctl uploads KEY [flags]

Prints what mediagw's ledger knows of the upload started with idempotency
key KEY (phase, committed_bytes, media id, response) as one JSON line.
mediagwctl upload prints the key of every file with --json.

Example:
  mediagwctl uploads ctl-3f9a0c2e8b1d4e5f6a7b8c9d0e1f2a3b

Exit codes: 0 found, 1 the call failed (unknown key: NotFound), 2 usage.
`

// oneArgCommand parses the flags of a command that takes one argument
// and connects (notify, if not nil, is told of retries). It returns the
// argument, the client and the options, or a nil client and the exit code
// (--help: 0, usage errors: 2).
func oneArgCommand(name, help string, args []string, getenv env, stderr io.Writer, extra func(*flag.FlagSet), notify func(client.Retry)) (string, *client.Client, *connOptions, int) {
	o := &connOptions{}
	fs := newFlagSet(name, help, stderr)
	o.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", nil, nil, usageExit(err)
	}
	err = applyEnv(fs, getenv)
	if err == nil {
		err = o.validate()
	}
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one argument, got %d (see mediagwctl %s --help)", len(pos), name)
	}
	var c *client.Client
	if err == nil {
		c, err = newClient(o, notify)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl %s: %v\n", name, err)
		return "", nil, nil, exitUsage
	}
	return pos[0], c, o, exitOK
}

func runStatus(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	id, c, o, code := oneArgCommand("status", statusHelp, args, getenv, stderr, nil, nil)
	if c == nil {
		return code
	}
	defer c.Close()
	st, err := c.GetStatus(withXToken(ctx, o), id)
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl status: %s\n", describe(err))
		return exitFailed
	}
	printProto(stdout, st)
	return processingExit(st)
}

func runWatch(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	progress := "auto"
	var disp *display
	var retries int
	notify := func(r client.Retry) { watchNotice(disp.notify, retries)(r) }
	id, c, o, code := oneArgCommand("watch", watchHelp, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&progress, "progress", "auto", "progress bar on stderr: auto (on a terminal), always or never")
	}, notify)
	if c == nil {
		return code
	}
	defer c.Close()
	if progress != "auto" && progress != "always" && progress != "never" {
		fmt.Fprintf(stderr, "mediagwctl watch: --progress must be auto, always or never, not %q\n", progress)
		return exitUsage
	}
	disp, retries = newDisplay(stderr, progress), o.Retries
	bar := disp.watcher(id)
	st, err := c.Watch(withXToken(ctx, o), id, func(st *mediagwv1.ProcessingStatus) {
		bar.processing(st)
		printProto(stdout, st)
	})
	bar.finish()
	disp.wait()
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl watch: %s\n", describe(err))
		return exitFailed
	}
	if code := processingExit(st); code != exitOK {
		pe := st.GetError()
		fmt.Fprintf(stderr, "mediagwctl watch: X could not process %s: %s (code %d): %s\n", id, pe.GetName(), pe.GetCode(), pe.GetMessage())
		return code
	}
	return exitOK
}

func runUploads(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	key, c, o, code := oneArgCommand("uploads", uploadsHelp, args, getenv, stderr, nil, nil)
	if c == nil {
		return code
	}
	defer c.Close()
	st, err := c.GetUpload(withXToken(ctx, o), key)
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl uploads: %s\n", describe(err))
		return exitFailed
	}
	printProto(stdout, st)
	return exitOK
}

func processingExit(st *mediagwv1.ProcessingStatus) int {
	if st.GetState() == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED {
		return exitProcessing
	}
	return exitOK
}

// printProto prints m as one line of JSON with the proto field names, as
// the REST API answers.
func printProto(w io.Writer, m proto.Message) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		out.Reset()
		out.Write(b)
	}
	out.WriteByte('\n')
	_, _ = w.Write(out.Bytes())
}
