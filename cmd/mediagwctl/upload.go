package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/status"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/client"
	"github.com/mediagw/mediagw/service/engine"
)

const uploadHelp = `Usage: mediagwctl upload FILE... [flags]

Uploads each FILE to X through mediagw. The media type is detected from
the file's bytes (--media-type overrides), the file's SHA-256 is declared
so mediagw verifies every byte, and an idempotency key is derived from the
file's hash, size, type, category, --account and a hash of the
--x-access-token-file token (--idempotency-key overrides; an empty
--idempotency-key '' sends none, for a mediagw run with --ledger off):
running the same command again after any failure resumes the upload, or
returns the same media id, instead of uploading twice. A broken
connection is resumed from the bytes X has committed, with backoff;
refusals no retry can change (a TLS handshake refused, Unauthenticated,
PermissionDenied, InvalidArgument) end at once.

Example:
  mediagwctl upload clip.mp4 --watch
  mediagwctl upload a.mp4 b.mp4 c.png -j 3 --json --watch | jq -r .media_id

Exit codes: 0 done, 1 upload failed, 2 usage, 3 X failed to process the media.
`

type uploadOptions struct {
	conn      connOptions
	watch     bool
	json      bool
	jobs      int
	mediaType string
	category  string
	key       string
	noKey     bool // --idempotency-key '': send none
	progress  string
	actions   uploadActions // --alt-text, --subtitles… (media.go)
}

// result is the outcome of one file, printed with --json.
type result struct {
	File            string           `json:"file"`
	MediaID         string           `json:"media_id"`
	MediaKey        string           `json:"media_key"`
	Size            int64            `json:"size"`
	SHA256          string           `json:"sha256"`
	IdempotencyKey  string           `json:"idempotency_key"`
	State           string           `json:"state"`
	ProcessingError *processingError `json:"processing_error,omitempty"`
	Error           string           `json:"error,omitempty"`
	code            int
}

type processingError struct {
	Code    int32  `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

func runUpload(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	var o uploadOptions
	fs := newFlagSet("upload", uploadHelp, stderr)
	o.conn.register(fs)
	fs.BoolVar(&o.watch, "watch", false, "wait for X's processing to end and show it")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per file on stdout at the end")
	fs.IntVar(&o.jobs, "j", 4, "files uploaded at once")
	fs.StringVar(&o.mediaType, "media-type", "", "media type of every FILE (default: detected from the bytes)")
	fs.StringVar(&o.category, "category", "", "X media category (tweet_video, amplify_video, dm_image…; default: from the type)")
	fs.StringVar(&o.key, "idempotency-key", "", "idempotency key (one FILE only; default: derived from the file; '' sends none)")
	fs.StringVar(&o.progress, "progress", "auto", "progress bars on stderr: auto (on a terminal), always or never")
	o.actions.register(fs)
	files, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	fs.Visit(func(f *flag.Flag) { o.noKey = o.noKey || (f.Name == "idempotency-key" && o.key == "") })
	category, err := o.validate(fs, getenv, files)
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl upload: %v\n", err)
		return exitUsage
	}
	var disp *display
	c, err := newClient(&o.conn, func(r client.Retry) { watchNotice(disp.notify, o.conn.Retries)(r) })
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl upload: %v\n", err)
		return exitUsage
	}
	defer c.Close()
	ctx = withXToken(ctx, &o.conn)
	disp = newDisplay(stderr, o.progress)

	u := &uploader{c: c, retries: o.conn.Retries, account: o.conn.Account, notify: disp.notify}
	if err := o.actions.prepare(ctx, u, o.conn.Account, ""); err != nil {
		fmt.Fprintf(stderr, "mediagwctl upload: %v\n", err)
		return exitFailed
	}
	u.actions = &o.actions
	results := make([]result, len(files))
	g := errgroup.Group{}
	g.SetLimit(o.jobs)
	for i, path := range files {
		g.Go(func() error {
			results[i] = o.uploadFile(ctx, u, disp, i, path, category)
			return nil
		})
	}
	_ = g.Wait()
	disp.wait()
	return report(results, o.json, stdout, stderr)
}

// validate completes the options from the environment and checks them
// with the files; it returns the parsed --category.
func (o *uploadOptions) validate(fs *flag.FlagSet, getenv env, files []string) (mediagwv1.MediaCategory, error) {
	if err := applyEnv(fs, getenv); err != nil {
		return 0, err
	}
	if err := o.conn.validate(); err != nil {
		return 0, err
	}
	if err := o.actions.validate(); err != nil {
		return 0, err
	}
	switch {
	case len(files) == 0:
		return 0, errors.New("no FILE given (see mediagwctl upload --help)")
	case o.jobs < 1:
		return 0, errors.New("-j must be at least 1")
	case o.key != "" && len(files) > 1:
		return 0, errors.New("--idempotency-key names one upload: give one FILE")
	case o.key != "" && !client.ValidKey(o.key):
		return 0, fmt.Errorf("--idempotency-key %q: up to 128 characters of A-Z a-z 0-9 . _ ~ : -", o.key)
	case o.progress != "auto" && o.progress != "always" && o.progress != "never":
		return 0, fmt.Errorf("--progress must be auto, always or never, not %q", o.progress)
	}
	o.mediaType = strings.ToLower(strings.TrimSpace(o.mediaType))
	cat, err := engine.ParseCategory(o.category)
	if err != nil {
		return 0, fmt.Errorf("--category: %s", status.Convert(err).Message())
	}
	return cat, nil
}

// uploadFile uploads one file and, with --watch, follows its processing.
func (o *uploadOptions) uploadFile(ctx context.Context, u *uploader, disp *display, order int, path string, category mediagwv1.MediaCategory) result {
	r := result{File: path}
	xToken := ""
	if o.conn.XAccessTokenFile != "" && !o.noKey && o.key == "" {
		// The derived key covers the X user (a hash of the token).
		t, err := readToken(o.conn.XAccessTokenFile, "--x-access-token-file")
		if err != nil {
			r.Error, r.code = err.Error(), exitFailed
			return r
		}
		xToken = t
	}
	m, err := inspect(path, o.mediaType, category, o.conn.Account, o.key, xToken, o.noKey)
	if err != nil {
		r.Error, r.code = err.Error(), exitFailed
		return r
	}
	o.actions.rekey(m, o.key)
	r.Size, r.SHA256, r.IdempotencyKey = m.size, m.sha256, m.key
	bar := disp.file(order, path, m.size)
	defer bar.finish()
	resp, err := u.upload(ctx, m, bar)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; run the same command again to resume")
			if m.key != "" {
				err = fmt.Errorf("interrupted; run the same command again to resume (idempotency key %s)", m.key)
			}
		}
		r.Error, r.code = describe(err), exitFailed
		return r
	}
	bar.uploaded()
	r.MediaID, r.MediaKey = resp.GetMediaId(), resp.GetMediaKey()
	if resp.GetSize() > 0 {
		r.Size = resp.GetSize()
	}
	st := resp.GetProcessing()
	if o.watch {
		bar.processing(st)
		if !client.Terminal(st) {
			st, err = u.c.Watch(ctx, resp.GetMediaId(), bar.processing)
			if err != nil {
				r.State = st.GetState().String()
				r.Error, r.code = "watching the processing: "+describe(err), exitFailed
				return r
			}
		}
	}
	r.State = st.GetState().String()
	if st.GetState() == mediagwv1.ProcessingState_PROCESSING_STATE_FAILED {
		pe := st.GetError()
		r.ProcessingError = &processingError{Code: pe.GetCode(), Name: pe.GetName(), Message: pe.GetMessage()}
		r.Error = fmt.Sprintf("X could not process the media: %s (code %d): %s", pe.GetName(), pe.GetCode(), pe.GetMessage())
		r.code = exitProcessing
	}
	return r
}

// report prints the results in the order of the files and returns the
// exit code: 1 if any upload failed, else 3 if any processing failed.
func report(results []result, asJSON bool, stdout, stderr io.Writer) int {
	code := exitOK
	enc := json.NewEncoder(stdout)
	for _, r := range results {
		if asJSON {
			_ = enc.Encode(r)
		} else if r.MediaID != "" {
			fmt.Fprintf(stdout, "%s: media_id %s media_key %s %s\n", r.File, r.MediaID, r.MediaKey, r.State)
		}
		if r.Error != "" {
			fmt.Fprintf(stderr, "mediagwctl: %s: %s\n", r.File, r.Error)
		}
		switch {
		case r.code == exitFailed:
			code = exitFailed
		case r.code == exitProcessing && code == exitOK:
			code = exitProcessing
		}
	}
	return code
}
