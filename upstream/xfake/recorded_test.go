package xfake_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// recorded holds the bodies of X's recorded exchanges (FACTS.md, the
// recorded/ directory of the shared fact sheet), copied as facts: the
// conformance tests compare the emulator's answers with them, exactly or by
// shape. TestRecordedTableMatchesFacts checks the copies against the
// originals whenever the shared directory sits beside the repository.
var recorded = map[string]struct {
	file   string // prefix of the recorded file
	index  int    // which JSON body of the file
	status int    // 0 when the file records none
	body   string
}{
	"v1 INIT":                {"v1_01", 0, 202, `{"media_id":1349803915521482754,"media_id_string":"1349803915521482754","expires_after_secs":86400}`},
	"v1 FINALIZE sync":       {"v1_04", 0, 201, `{"media_id":1349803915521482754,"media_id_string":"1349803915521482754","size":1577963,"expires_after_secs":86400,"video":{"video_type":"video\/mp4"}}`},
	"v1 INIT category":       {"v1_05", 0, 202, `{"media_id":1302644179944734720,"media_id_string":"1302644179944734720","expires_after_secs":86399,"media_key":"7_1302644179944734720"}`},
	"v1 FINALIZE async":      {"v1_06", 0, 200, `{"media_id":1302644179944734720,"media_id_string":"1302644179944734720","media_key":"7_1302644179944734720","size":1577963,"expires_after_secs":86400,"processing_info":{"state":"pending","check_after_secs":1}}`},
	"v1 simple upload":       {"v1_07", 0, 200, `{"media_id":1349010951484399617,"media_id_string":"1349010951484399617","size":1021636,"expires_after_secs":86400,"image":{"image_type":"image\/gif","w":320,"h":240}}`},
	"v1 request error":       {"v1_08", 0, 400, `{"request":"\/1.1\/media\/upload.json","error":"media type unrecognized."}`},
	"v1 failed":              {"v1_09", 0, 0, `{"media_id":1187325998846660609,"media_id_string":"1187325998846660609","media_key":"7_1187325998846660609","size":8795782,"processing_info":{"state":"failed","progress_percent":100,"error":{"code":1,"name":"InvalidMedia","message":"file is invalid"}}}`},
	"v2 cmd INIT":            {"v2_01", 0, 202, `{"data":{"id":"1912475018862166016","media_key":"16_1912475018862166016","expires_after_secs":86400}}`},
	"v2 cmd FINALIZE":        {"v2_03", 0, 200, `{"data":{"id":"1912475018862166016","media_key":"16_1912475018862166016","expires_after_secs":86400,"processing_info":{"state":"pending","check_after_secs":1},"size":708679}}`},
	"v2 STATUS succeeded":    {"v2_04", 0, 200, `{"data":{"id":"1912475018862166016","media_key":"16_1912475018862166016","expires_after_secs":86398,"processing_info":{"state":"succeeded","progress_percent":100},"size":708679}}`},
	"v2 APPEND":              {"v2_05", 0, 200, `{"data":{"expires_at":1749908627578}}`},
	"v2 FINALIZE pending":    {"v2_06", 0, 0, `{"data":{"expires_after_secs":1296000,"id":"1959975206895702016","media_key":"13_1959975206895702016","processing_info":{"check_after_secs":1,"state":"pending"},"size":120531}}`},
	"v2 FINALIZE image":      {"v2_07", 0, 0, `{"data":{"id":"1900544781383569409","media_key":"3_1900544781383569409","size":117807,"expires_after_secs":86400,"image":{"image_type":"image\/jpeg","w":1266,"h":793}}}`},
	"v2 STATUS not found":    {"v2_07", 1, 0, `{"errors":[{"message":"BadRequest: Not found"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`},
	"v2 403":                 {"v2_08", 0, 403, `{"title":"Forbidden","type":"about:blank","status":403,"detail":"Forbidden"}`},
	"v2 cmd JSON body":       {"v2_09", 0, 400, `{"errors":[{"code":38,"message":"media parameter is missing."}]}`},
	"v2 invalid JSON":        {"v2_10", 0, 400, `{"errors":[{"message":"Request body is not valid JSON."}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`},
	"v2 429":                 {"v2_11", 0, 429, `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`},
	"v2 500 (fragment)":      {"v2_12", -1, 0, `{"errors":["internal server error"]}`},
	"v2 413 empty (no body)": {"v2_13", -1, 0, ``},
}

func rec(t testing.TB, name string) string {
	t.Helper()
	r, ok := recorded[name]
	if !ok {
		t.Fatalf("no recorded body %q", name)
	}
	return r.body
}

// recordedDir is the shared fact sheet's recorded/ directory, beside the
// repository root.
func recordedDir() string { return filepath.Join("..", "..", "..", "shared", "x-api", "recorded") }

// parseRecorded reads a recorded file: the status of its "< HTTP/1.1 NNN"
// line and its JSON bodies in order.
func parseRecorded(t *testing.T, path string) (int, []json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	status := 0
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "< HTTP/"):
			f := strings.Fields(line)
			status, _ = strconv.Atoi(f[2])
		case strings.HasPrefix(line, "#"), strings.HasPrefix(line, "<"), strings.HasPrefix(line, ">"):
		default:
			text.WriteString(line + "\n")
		}
	}
	var bodies []json.RawMessage
	rest := text.String()
	for {
		i := strings.Index(rest, "{")
		if i < 0 {
			break
		}
		dec := json.NewDecoder(strings.NewReader(rest[i:]))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			rest = rest[i+1:]
			continue
		}
		bodies = append(bodies, raw)
		rest = rest[i+int(dec.InputOffset()):]
	}
	return status, bodies
}

func TestRecordedTableMatchesFacts(t *testing.T) {
	dir := recordedDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared fact sheet not beside the repository (%v)", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range recorded {
		if r.index < 0 {
			continue // fragments and log lines hold no JSON body to compare
		}
		t.Run(name, func(t *testing.T) {
			var path string
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), r.file+"_") {
					path = filepath.Join(dir, e.Name())
				}
			}
			if path == "" {
				t.Fatalf("no recorded file %s_*", r.file)
			}
			status, bodies := parseRecorded(t, path)
			if status != r.status {
				t.Errorf("status: recorded %d, table %d", status, r.status)
			}
			if r.index >= len(bodies) {
				t.Fatalf("recorded file has %d bodies", len(bodies))
			}
			var got, want any
			_ = json.Unmarshal(bodies[r.index], &got)
			_ = json.Unmarshal([]byte(r.body), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("table body differs from the recorded one:\n%s\n%s", bodies[r.index], r.body)
			}
		})
	}
}
