package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mediagw/mediagw/service/client"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// uploader uploads files through the client package, which resumes
// interrupted uploads from the bytes mediagw says X has committed; it
// adds the command's notices and wording.
type uploader struct {
	c       *client.Client
	retries int
	account string
	// notify reports a retry (a line above the progress bars, or on
	// stderr).
	notify func(format string, args ...any)
	// actions adds the metadata and subtitles to every upload (media.go).
	actions *uploadActions
}

// progress is told where an attempt starts and of every chunk sent.
type progress interface {
	at(offset int64)
	add(n int, took time.Duration)
}

// upload uploads m and returns X's answer.
func (u *uploader) upload(ctx context.Context, m *mediaFile, p progress) (*mediagwv1.UploadResponse, error) {
	o := client.UploadOptions{MediaType: m.mediaType, Category: m.category, Account: u.account, SHA256: m.sha256,
		IdempotencyKey: m.key, NoIdempotencyKey: m.key == "", Progress: barProgress(p),
		OnRetry: func(r client.Retry) {
			u.notify("%s: %s; resuming at %s in %s (retry %d of %d)", m.path, describe(r.Err),
				humanBytes(r.Offset), r.Wait.Round(time.Millisecond), r.Failures, u.retries)
		}}
	u.actions.decorate(&o) // media.go
	res, err := u.c.Upload(ctx, client.File(m.path), o)
	var e *client.Error
	if errors.As(err, &e) && e.Reason == client.ReasonGaveUp && m.key != "" {
		return nil, fmt.Errorf("%s; run the same command again to resume (idempotency key %s)", describe(err), m.key)
	}
	if err != nil {
		return nil, err
	}
	return res.Response, nil
}

// watchNotice is the notice of a watch's retry.
func watchNotice(notify func(format string, args ...any), retries int) func(client.Retry) {
	return func(r client.Retry) {
		if r.Op == "watch" {
			notify("watch %s: %s; again in %s (retry %d of %d)", r.Key, describe(r.Err), r.Wait.Round(time.Millisecond), r.Failures, retries)
		}
	}
}
