package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// ewmaWindow is how much sending time one speed sample covers: gRPC's
// Send returns as soon as a chunk is buffered, so single chunks say
// little about the rate.
const ewmaWindow = 100 * time.Millisecond

// display draws one upload bar per file, and a processing bar once X
// processes it, on stderr when it is a terminal (or when forced). With no
// bars, notices go to stderr as plain lines.
type display struct {
	p      *mpb.Progress // nil: no bars
	stderr io.Writer
	mu     sync.Mutex // orders plain notices
}

// newDisplay decides on bars from mode: "auto" (only on a terminal),
// "always" or "never".
func newDisplay(stderr io.Writer, mode string) *display {
	d := &display{stderr: stderr}
	on := mode == "always"
	if mode == "auto" {
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			on = true
		}
	}
	if on {
		d.p = mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(100), mpb.WithRefreshRate(120*time.Millisecond),
			mpb.ContainerOptional(mpb.ForceTTY(), mode == "always"),
			mpb.ContainerOptional(mpb.WithAutoRefresh(), mode == "always"))
	}
	return d
}

// notify prints a line above the bars, or on stderr.
func (d *display) notify(format string, args ...any) {
	line := "mediagwctl: " + fmt.Sprintf(format, args...) + "\n"
	if d.p != nil {
		_, _ = d.p.Write([]byte(line))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _ = io.WriteString(d.stderr, line)
}

// wait flushes the bars; every bar must have been finished.
func (d *display) wait() {
	if d.p != nil {
		d.p.Wait()
	}
}

// fileBar is the display of one file; its methods do nothing without
// bars.
type fileBar struct {
	d      *display
	name   string
	order  int
	size   int64
	up     *mpb.Bar
	proc   *mpb.Bar
	phase  atomic.Value // string shown next to the processing bar
	mu     sync.Mutex
	buffer int64 // bytes sent but not yet shown
	took   time.Duration
}

// file adds the upload bar of the order-th file.
func (d *display) file(order int, path string, size int64) *fileBar {
	b := &fileBar{d: d, name: shortName(path), order: order, size: size}
	if d.p == nil {
		return b
	}
	b.up = d.p.AddBar(size, mpb.BarPriority(2*order),
		mpb.PrependDecorators(
			decor.Name(b.name, decor.WCSyncSpaceR),
			decor.Name("upload", decor.WCSyncSpaceR),
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
		),
		mpb.AppendDecorators(
			decor.OnAbort(decor.Percentage(decor.WCSyncSpace), "failed"),
			decor.OnAbort(decor.OnComplete(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace), ""), ""),
			decor.OnAbort(decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), "done"), ""),
		),
	)
	return b
}

// watcher is the display of a watch alone: a processing bar only.
func (d *display) watcher(mediaID string) *fileBar {
	return &fileBar{d: d, name: shortName(mediaID)}
}

func shortName(path string) string {
	n := filepath.Base(path)
	if r := []rune(n); len(r) > 28 {
		n = string(r[:12]) + "…" + string(r[len(r)-15:])
	}
	return n
}

// at moves the upload bar to an attempt's starting offset.
func (b *fileBar) at(offset int64) {
	if b.up == nil {
		return
	}
	b.mu.Lock()
	b.buffer, b.took = 0, 0
	b.mu.Unlock()
	b.up.SetCurrent(offset)
}

// add records n bytes sent in took.
func (b *fileBar) add(n int, took time.Duration) {
	if b.up == nil {
		return
	}
	b.mu.Lock()
	b.buffer += int64(n)
	b.took += took
	flush, amount, dur := b.took >= ewmaWindow, b.buffer, b.took
	if flush {
		b.buffer, b.took = 0, 0
	}
	b.mu.Unlock()
	if flush {
		b.up.EwmaIncrInt64(amount, dur)
	}
}

// uploaded completes the upload bar: X has the whole file.
func (b *fileBar) uploaded() {
	if b.up != nil {
		b.up.SetCurrent(b.size)
	}
}

// processing shows X's processing state.
func (b *fileBar) processing(st *mediagwv1.ProcessingStatus) {
	if b.d.p == nil {
		return
	}
	b.phase.Store(stateLabel(st.GetState()))
	if b.proc == nil {
		b.proc = b.d.p.AddBar(100, mpb.BarPriority(2*b.order+1),
			mpb.PrependDecorators(
				decor.Name(b.name, decor.WCSyncSpaceR),
				decor.Name("process", decor.WCSyncSpaceR),
				decor.Any(func(decor.Statistics) string { s, _ := b.phase.Load().(string); return s }, decor.WCSyncSpace),
			),
			mpb.AppendDecorators(decor.OnAbort(decor.Percentage(decor.WCSyncSpace), "failed")),
		)
	}
	switch st.GetState() {
	case mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED:
		b.proc.SetCurrent(100)
	case mediagwv1.ProcessingState_PROCESSING_STATE_FAILED:
		b.proc.Abort(false)
	default:
		b.proc.SetCurrent(int64(min(max(st.GetProgressPercent(), 0), 99)))
	}
}

// finish ends every bar still running (failed uploads, watches cut
// short), so that the display can be flushed.
func (b *fileBar) finish() {
	for _, bar := range []*mpb.Bar{b.up, b.proc} {
		if bar != nil && !bar.Completed() {
			bar.Abort(false)
		}
	}
}

// stateLabel is a processing state in lower case words.
func stateLabel(s mediagwv1.ProcessingState) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.String(), "PROCESSING_STATE_")), "_", " ")
}
