package relay

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/backend"
)

// Reasons for X's processing errors that name no rule mediagw knows
// (X's codes 1 InvalidMedia and 3 UnsupportedMedia, or another).
const (
	ReasonXInvalidMedia     = "X_INVALID_MEDIA"
	ReasonXUnsupportedMedia = "X_UNSUPPORTED_MEDIA"
	ReasonXUnsupportedVideo = "X_UNSUPPORTED_VIDEO_FORMAT"
	ReasonXProcessingError  = "X_PROCESSING_ERROR"
)

var (
	// "Duration 2.minutes+29.seconds+350.milliseconds exceeds max duration
	// of 2.minutes+20.seconds" (X's v1.1 STATUS), or "Duration 2:29
	// exceeds 2:20"; "below min duration" for too short.
	durationRule = regexp.MustCompile(`(?i)duration\s+(\S+)\s+(exceeds max|is below min|below min)\w*\s+duration(?:\s+of)?\s+(\S+)`)
	durationTerm = regexp.MustCompile(`^(\d+(?:\.\d+)?)\.(hours?|minutes?|seconds?|milliseconds?)$`)
	// "File size exceeds 5242880 bytes".
	sizeRule = regexp.MustCompile(`(?i)file size exceeds (\d+) bytes`)
)

// violationOf names X's processing error as a typed reason: the rule
// mediagw checks when X's message says which one (with its limit and the
// media's value), else X's code and name. X's message is the
// description, unchanged.
func violationOf(e *backend.ProcessingError) *mediagwv1.MediaRuleViolation {
	if e == nil {
		return nil
	}
	v := &mediagwv1.MediaRuleViolation{Field: "media", Description: e.Message}
	if m := durationRule.FindStringSubmatch(e.Message); m != nil {
		actual, aok := xDuration(m[1])
		limit, lok := xDuration(m[3])
		if aok && lok {
			v.Reason, v.Field, v.Limit, v.Actual = "VIDEO_TOO_LONG", "duration", seconds(limit), seconds(actual)
			if !strings.Contains(strings.ToLower(m[2]), "exceed") {
				v.Reason = "VIDEO_TOO_SHORT"
			}
			return v
		}
	}
	if m := sizeRule.FindStringSubmatch(e.Message); m != nil {
		v.Reason, v.Field, v.Limit = "MEDIA_TOO_LARGE", "bytes", m[1]
		return v
	}
	switch {
	case strings.Contains(strings.ToLower(e.Message), "unsupported video format"):
		v.Reason = ReasonXUnsupportedVideo
	case e.Code == 1 || e.Name == "InvalidMedia":
		v.Reason = ReasonXInvalidMedia
	case e.Code == 3 || e.Name == "UnsupportedMedia":
		v.Reason = ReasonXUnsupportedMedia
	default:
		v.Reason = ReasonXProcessingError
	}
	return v
}

// xDuration reads X's "2.minutes+29.seconds+350.milliseconds" or "2:29".
func xDuration(s string) (time.Duration, bool) {
	s = strings.TrimRight(s, ".,;")
	if strings.Contains(s, ":") {
		var d time.Duration
		for _, p := range strings.Split(s, ":") {
			n, err := strconv.ParseFloat(p, 64)
			if err != nil || n < 0 {
				return 0, false
			}
			d = d*60 + time.Duration(n*float64(time.Second))
		}
		return d, true
	}
	var d time.Duration
	for _, term := range strings.Split(s, "+") {
		m := durationTerm.FindStringSubmatch(term)
		if m == nil {
			return 0, false
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		unit := map[byte]time.Duration{'h': time.Hour, 'm': time.Minute, 's': time.Second}[m[2][0]]
		if strings.HasPrefix(m[2], "milli") {
			unit = time.Millisecond
		}
		d += time.Duration(n * float64(unit))
	}
	return d, true
}

// seconds writes a duration as the rules do: "140s", "149.35s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
