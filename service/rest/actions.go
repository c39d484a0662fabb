package rest

import (
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
)

// actionsFromValues reads the REST fields of UploadStart.metadata and
// subtitles:
//
//	metadata=JSON            a MediaMetadata (protojson), or
//	alt_text=TEXT            metadata.alt_text
//	sensitive=adult,graphic,other
//	allow_download=true|false
//	subtitles=MEDIA_ID:LANG[:Display name]   (repeatable)
func actionsFromValues(v url.Values, st *mediagwv1.UploadStart) error {
	var md *mediagwv1.MediaMetadata
	if j := v.Get("metadata"); j != "" {
		md = &mediagwv1.MediaMetadata{}
		if err := protojson.Unmarshal([]byte(j), md); err != nil {
			return apierr.Invalidf("metadata is not a MediaMetadata in JSON: %v", err)
		}
	}
	simple := v.Has("alt_text") || v.Has("sensitive") || v.Has("allow_download")
	if md != nil && simple {
		return apierr.Invalidf("give metadata as JSON or as alt_text, sensitive and allow_download, not both")
	}
	if simple {
		md = &mediagwv1.MediaMetadata{}
		if v.Has("alt_text") {
			t := v.Get("alt_text")
			md.AltText = &t
		}
		if s := v.Get("sensitive"); s != "" {
			w := &mediagwv1.SensitiveMediaWarning{}
			for _, f := range strings.Split(s, ",") {
				switch strings.TrimSpace(f) {
				case "adult":
					w.AdultContent = true
				case "graphic":
					w.GraphicViolence = true
				case "other":
					w.Other = true
				default:
					return apierr.Invalidf("sensitive %s: name adult, graphic or other, comma-separated", apierr.Quote(f))
				}
			}
			md.SensitiveMediaWarning = w
		}
		if s := v.Get("allow_download"); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return apierr.Invalidf("allow_download %s is not true or false", apierr.Quote(s))
			}
			md.AllowDownload = &b
		}
	}
	st.Metadata = md
	for _, s := range v["subtitles"] {
		parts := strings.SplitN(s, ":", 3)
		if len(parts) < 2 {
			return apierr.Invalidf("subtitles %s: give MEDIA_ID:LANGUAGE_CODE[:Display name]", apierr.Quote(s))
		}
		t := &mediagwv1.SubtitlesTrack{SubtitlesMediaId: parts[0], LanguageCode: parts[1]}
		if len(parts) == 3 {
			t.DisplayName = parts[2]
		}
		st.Subtitles = append(st.Subtitles, t)
	}
	return nil
}
