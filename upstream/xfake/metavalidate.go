package xfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Validation of the metadata and subtitles bodies (OpenAPI MetadataCreateRequest,
// SubtitlesCreateRequest, SubtitlesDeleteRequest; v1.1 metadata/create.json and
// subtitles/{create,delete}.json). Messages follow the validator wording of
// validate.go.

const (
	// maxAltText is X's limit on alt text, in characters (FACTS §8; the
	// OpenAPI AltText description "<= 1000 characters"). Counted in Unicode
	// code points, not bytes.
	maxAltText = 1000
	// maxMetaBody bounds a metadata or subtitles body; X's are a few hundred
	// bytes.
	maxMetaBody = 64 << 10
)

var (
	languagePattern = regexp.MustCompile(`^[A-Z]{2}$`)
	countryPattern  = regexp.MustCompile(`^[A-Za-z]{2}$`)
	mediaKeyPattern = regexp.MustCompile(`^([0-9]+)_([0-9]+)$`)
)

// looseMetadata are members of metadata X documents with shapes this
// emulator does not check beyond being objects.
var looseMetadata = []string{"domain_restrictions", "management_info", "preview_image",
	"shared_info", "sticker_info", "upload_source"}

// only reports every member of members not among allowed.
func (c *checker) only(members map[string]json.RawMessage, allowed ...string) {
	for k := range members {
		if !slices.Contains(allowed, k) {
			c.add(msgUnknownField(k))
		}
	}
}

// readSmallJSON reads a JSON object body of at most maxMetaBody bytes.
func readSmallJSON(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxMetaBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaBody {
		return nil, errBadJSON
	}
	if !json.Valid(b) {
		return nil, errBadJSON
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errNotObject
	}
	return m, nil
}

// checker collects validation messages for one body.
type checker struct{ errs []string }

func (c *checker) add(msg string) { c.errs = append(c.errs, msg) }

// sorted returns the messages in a stable order (members are read from a
// map).
func (c *checker) sorted() []string {
	sort.Strings(c.errs)
	return c.errs
}

// object reads raw at path as an object whose members are in allowed; nil
// when it is not one.
func (c *checker) object(raw json.RawMessage, path string, allowed ...string) map[string]json.RawMessage {
	if k := jsonKind(raw); k != "object" {
		c.add(msgType(path, k, "object"))
		return nil
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	for k := range m {
		if !slices.Contains(allowed, k) {
			c.add(msgUnknownField(path + "." + k))
		}
	}
	return m
}

// str reads member name of m as a string; required reports a missing one.
func (c *checker) str(m map[string]json.RawMessage, path, name string, required bool) (string, bool) {
	raw, ok := m[name]
	if !ok {
		if required {
			c.add(msgMissing(path + name))
		}
		return "", false
	}
	if k := jsonKind(raw); k != "string" {
		c.add(msgType(path+name, k, "string"))
		return "", false
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s, true
}

// id reads a media id member given as a string (v2) or, with numbers
// allowed (v1.1), as a JSON integer.
func (c *checker) id(m map[string]json.RawMessage, path, name string, numbers bool) string {
	raw, ok := m[name]
	if numbers && ok && jsonKind(raw) == "integer" {
		s := strings.TrimSpace(string(raw))
		if !idPattern.MatchString(s) {
			c.add(msgPattern(path+name, idPattern.String()))
		}
		return s
	}
	s, ok := c.str(m, path, name, true)
	if ok && !idPattern.MatchString(s) {
		c.add(msgPattern(path+name, idPattern.String()))
	}
	return s
}

func (c *checker) boolean(m map[string]json.RawMessage, path, name string) bool {
	raw, ok := m[name]
	if !ok {
		return false
	}
	if k := jsonKind(raw); k != "boolean" {
		c.add(msgType(path+name, k, "boolean"))
		return false
	}
	return string(raw) == "true"
}

// list reads member name as an array of strings matching ok.
func (c *checker) list(m map[string]json.RawMessage, path, name string, ok func(string) bool, why string) []string {
	raw, present := m[name]
	if !present {
		return nil
	}
	if k := jsonKind(raw); k != "array" {
		c.add(msgType(path+name, k, "array"))
		return nil
	}
	var items []json.RawMessage
	_ = json.Unmarshal(raw, &items)
	out := make([]string, 0, len(items))
	for i, it := range items {
		field := fmt.Sprintf("%s%s[%d]", path, name, i)
		var s string
		if k := jsonKind(it); k != "string" {
			c.add(msgType(field, k, "string"))
			continue
		}
		_ = json.Unmarshal(it, &s)
		if !ok(s) {
			c.add("$." + field + ": " + why)
			continue
		}
		out = append(out, s)
	}
	return out
}

// altText checks the text of alt_text: at most maxAltText characters.
func (c *checker) altText(m map[string]json.RawMessage, path string) *AltText {
	o := c.object(m["alt_text"], path+"alt_text", "text")
	if o == nil {
		return nil
	}
	s, ok := c.str(o, path+"alt_text.", "text", true)
	if !ok {
		return nil
	}
	if n := utf8.RuneCountInString(s); n > maxAltText {
		c.add(fmt.Sprintf("$.%salt_text.text: may only be %d characters long", path, maxAltText))
		return nil
	}
	return &AltText{Text: s}
}

// metadataV2 validates the metadata member of POST /2/media/metadata.
func (c *checker) metadataV2(raw json.RawMessage) *MediaMetadata {
	const p = "metadata"
	allowed := append([]string{"alt_text", "sensitive_media_warning", "allow_download_status",
		"audience_policy", "geo_restrictions", "content_expiration", "found_media_origin"}, looseMetadata...)
	m := c.object(raw, p, allowed...)
	if m == nil {
		return nil
	}
	md := &MediaMetadata{}
	if _, ok := m["alt_text"]; ok {
		md.AltText = c.altText(m, p+".")
	}
	if raw, ok := m["sensitive_media_warning"]; ok {
		if o := c.object(raw, p+".sensitive_media_warning", "adult_content", "graphic_violence", "other"); o != nil {
			q := p + ".sensitive_media_warning."
			md.SensitiveMediaWarning = &SensitiveMediaWarning{AdultContent: c.boolean(o, q, "adult_content"),
				GraphicViolence: c.boolean(o, q, "graphic_violence"), Other: c.boolean(o, q, "other")}
		}
	}
	if raw, ok := m["allow_download_status"]; ok {
		if o := c.object(raw, p+".allow_download_status", "allow_download"); o != nil {
			md.AllowDownloadStatus = &AllowDownloadStatus{AllowDownload: c.boolean(o, p+".allow_download_status.", "allow_download")}
		}
	}
	if raw, ok := m["audience_policy"]; ok {
		if o := c.object(raw, p+".audience_policy", "creator_subscriptions", "x_subscriptions"); o != nil {
			q := p + ".audience_policy."
			isAny := func(s string) bool { return s == "Any" }
			why := "does not have a value in the enumeration [Any]"
			md.AudiencePolicy = &AudiencePolicy{CreatorSubscriptions: c.list(o, q, "creator_subscriptions", isAny, why),
				XSubscriptions: c.list(o, q, "x_subscriptions", isAny, why)}
		}
	}
	if raw, ok := m["geo_restrictions"]; ok {
		if o := c.object(raw, p+".geo_restrictions", "blacklisted_country_codes", "whitelisted_country_codes"); o != nil {
			q := p + ".geo_restrictions."
			why := "does not match the regex pattern " + countryPattern.String()
			md.GeoRestrictions = &GeoRestrictions{
				BlacklistedCountryCodes: c.list(o, q, "blacklisted_country_codes", countryPattern.MatchString, why),
				WhitelistedCountryCodes: c.list(o, q, "whitelisted_country_codes", countryPattern.MatchString, why)}
		}
	}
	if raw, ok := m["content_expiration"]; ok {
		if o := c.object(raw, p+".content_expiration", "timestamp_sec"); o != nil {
			switch ts, present := o["timestamp_sec"]; {
			case !present:
				c.add(msgMissing(p + ".content_expiration.timestamp_sec"))
			case jsonKind(ts) != "integer":
				c.add(msgType(p+".content_expiration.timestamp_sec", jsonKind(ts), "integer"))
			default:
				var n int64
				if json.Unmarshal(ts, &n) != nil || n < 1 {
					c.add(msgMin(p+".content_expiration.timestamp_sec", 1))
				}
				md.ContentExpiration = &ContentExpiration{TimestampSec: n}
			}
		}
	}
	if raw, ok := m["found_media_origin"]; ok {
		if o := c.object(raw, p+".found_media_origin", "id", "provider"); o != nil {
			q := p + ".found_media_origin."
			id, _ := c.str(o, q, "id", true)
			prov, _ := c.str(o, q, "provider", false)
			md.FoundMediaOrigin = &FoundMediaOrigin{ID: id, Provider: prov}
		}
	}
	for _, k := range looseMetadata {
		if raw, ok := m[k]; ok {
			if c.object(raw, p+"."+k, objectKeys(raw)...) != nil {
				if md.Other == nil {
					md.Other = map[string]json.RawMessage{}
				}
				md.Other[k] = raw
			}
		}
	}
	return md
}

// objectKeys lists the member names of raw, when it is an object.
func objectKeys(raw json.RawMessage) []string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// track validates one subtitles object {id|media_id, language_code,
// display_name}.
func (c *checker) track(raw json.RawMessage, path, idName string, v11 bool) SubtitleTrack {
	o := c.object(raw, path, idName, "language_code", "display_name")
	if o == nil {
		return SubtitleTrack{}
	}
	q := path + "."
	t := SubtitleTrack{MediaID: c.id(o, q, idName, v11)}
	t.LanguageCode = c.language(o, q)
	t.DisplayName, _ = c.str(o, q, "display_name", false)
	return t
}

// language reads language_code, which must match ^[A-Z]{2}$.
func (c *checker) language(o map[string]json.RawMessage, path string) string {
	l, ok := c.str(o, path, "language_code", true)
	if ok && !languagePattern.MatchString(l) {
		c.add(msgPattern(path+"language_code", languagePattern.String()))
	}
	return l
}

// subtitleCategory reads media_category, TweetVideo or AmplifyVideo.
func (c *checker) subtitleCategory(m map[string]json.RawMessage) string {
	list := []string{"AmplifyVideo", "TweetVideo"}
	if _, ok := m["media_category"]; !ok {
		c.add(msgMissing("media_category"))
		return ""
	}
	return enumField(m, "media_category", list, &c.errs)
}
