package xfake

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Field validation shared by the dialects. Messages follow the JSON-schema
// validator wording X's v2 answers carry ("$.field: ...").

const maxTotalBytes = 17179869184 // 16 GiB (OpenAPI 2.167)

var (
	idPattern      = regexp.MustCompile(`^[0-9]{1,19}$`)
	segmentPattern = regexp.MustCompile(`^[0-9]{1,3}$`)
)

func msgMissing(field string) string { return "$." + field + ": is missing but it is required" }

func msgType(field, found, want string) string {
	return fmt.Sprintf("$.%s: %s found, %s expected", field, found, want)
}

func msgEnum(field string, list []string) string {
	return fmt.Sprintf("$.%s: does not have a value in the enumeration [%s]", field, strings.Join(list, ", "))
}

func msgUnknownField(field string) string {
	return "$." + field + ": is not defined in the schema and the schema does not allow additional properties"
}

func msgMin(field string, v int64) string {
	return fmt.Sprintf("$.%s: must have a minimum value of %d", field, v)
}

func msgMax(field string, v int64) string {
	return fmt.Sprintf("$.%s: must have a maximum value of %d", field, v)
}

func msgPattern(field, pattern string) string {
	return fmt.Sprintf("$.%s: does not match the regex pattern %s", field, pattern)
}

// jsonKind names the JSON type of raw, as the validator messages do.
// enumField reads the string member field, which must be one of list; a
// missing member is "" with no error, a wrong one adds to errs.
func enumField(members map[string]json.RawMessage, field string, list []string, errs *[]string) string {
	raw, ok := members[field]
	if !ok {
		return ""
	}
	var s string
	if kind := jsonKind(raw); kind != "string" {
		*errs = append(*errs, msgType(field, kind, "string"))
		return ""
	}
	_ = json.Unmarshal(raw, &s)
	if !slices.Contains(list, s) {
		*errs = append(*errs, msgEnum(field, list))
	}
	return s
}

func jsonKind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "":
		return "null"
	case s[0] == '"':
		return "string"
	case s[0] == '{':
		return "object"
	case s[0] == '[':
		return "array"
	case s == "true" || s == "false":
		return "boolean"
	case s == "null":
		return "null"
	case strings.ContainsAny(s, ".eE"):
		return "number"
	}
	return "integer"
}

// checkTotal validates total_bytes in 1..16 GiB.
func checkTotal(n int64) string {
	switch {
	case n < 1:
		return msgMin("total_bytes", 1)
	case n > maxTotalBytes:
		return msgMax("total_bytes", maxTotalBytes)
	}
	return ""
}

// segmentIndex parses segment_index given as text. It returns the index, or
// an operation error (range) or a message (syntax).
func segmentIndex(s string) (int, *opError, string) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, nil, msgPattern("segment_index", segmentPattern.String())
	}
	if n < 0 || n > 999 {
		return 0, opErr(errSegmentIndex), ""
	}
	return n, nil, ""
}

// segmentIndexJSON parses segment_index given as a JSON integer or string.
func segmentIndexJSON(raw json.RawMessage) (int, *opError, string) {
	switch jsonKind(raw) {
	case "integer":
		return segmentIndex(string(raw))
	case "string":
		var s string
		if json.Unmarshal(raw, &s) != nil || !segmentPattern.MatchString(s) {
			if n, err := strconv.Atoi(s); err == nil && (n < 0 || n > 999) {
				return 0, opErr(errSegmentIndex), ""
			}
			return 0, nil, msgPattern("segment_index", segmentPattern.String())
		}
		return segmentIndex(s)
	case "null":
		return 0, nil, msgMissing("segment_index")
	}
	return 0, nil, msgType("segment_index", jsonKind(raw), "integer")
}

// initV2JSON validates the body of POST /2/media/upload/initialize
// (MediaUploadConfigRequest, additionalProperties false).
func initV2JSON(members map[string]json.RawMessage) (initParams, []string) {
	var p initParams
	var errs []string
	for k := range members {
		switch k {
		case "media_type", "total_bytes", "media_category", "additional_owners", "shared":
		default:
			errs = append(errs, msgUnknownField(k))
		}
	}
	str := func(field string, list []string) string { return enumField(members, field, list, &errs) }
	if _, ok := members["media_type"]; !ok {
		errs = append(errs, msgMissing("media_type"))
	}
	p.mediaType = str("media_type", mediaTypes)
	p.category = str("media_category", mediaCategories)
	switch raw, ok := members["total_bytes"]; {
	case !ok:
		errs = append(errs, msgMissing("total_bytes"))
	case jsonKind(raw) != "integer":
		errs = append(errs, msgType("total_bytes", jsonKind(raw), "integer"))
	default:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			n = maxTotalBytes + 1
		}
		if msg := checkTotal(n); msg != "" {
			errs = append(errs, msg)
		}
		p.totalBytes = n
	}
	if raw, ok := members["shared"]; ok && jsonKind(raw) != "boolean" {
		errs = append(errs, msgType("shared", jsonKind(raw), "boolean"))
	}
	if raw, ok := members["additional_owners"]; ok {
		errs = append(errs, checkOwners(raw)...)
	}
	return p, errs
}

func checkOwners(raw json.RawMessage) []string {
	if k := jsonKind(raw); k != "array" {
		return []string{msgType("additional_owners", k, "array")}
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return []string{msgType("additional_owners", "object", "array")}
	}
	if len(items) > 100 {
		return []string{"$.additional_owners: there must be a maximum of 100 items in the array"}
	}
	var errs []string
	for i, it := range items {
		field := fmt.Sprintf("additional_owners[%d]", i)
		var s string
		if k := jsonKind(it); k != "string" {
			errs = append(errs, msgType(field, k, "string"))
		} else if _ = json.Unmarshal(it, &s); !idPattern.MatchString(s) {
			errs = append(errs, msgPattern(field, idPattern.String()))
		}
	}
	return errs
}
