package upstream

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// recordedDir holds X exchanges recorded from real traffic and public
// issues. It lives in the shared folder beside the repository and is read in
// place, never copied into the repository.
var recordedDir = filepath.Join("..", "..", "shared", "x-api", "recorded")

// recorded is one parsed exchange file.
type recorded struct {
	name   string
	status int
	header http.Header
	bodies []string // blocks of body text separated by comment lines
}

// loadRecorded parses every recorded exchange, or skips the test when the
// shared folder is not beside the repository.
func loadRecorded(tb testing.TB) map[string]recorded {
	tb.Helper()
	out, err := readRecorded()
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Skipf("recorded exchanges not found in %s", recordedDir)
	}
	return out
}

// readRecorded parses the recorded files; none found is not an error.
func readRecorded() (map[string]recorded, error) {
	files, _ := filepath.Glob(filepath.Join(recordedDir, "v*_*"))
	out := make(map[string]recorded, len(files))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		rec := recorded{name: filepath.Base(f), header: http.Header{}}
		var cur strings.Builder
		flush := func() {
			if s := strings.TrimSpace(cur.String()); s != "" {
				rec.bodies = append(rec.bodies, s)
			}
			cur.Reset()
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "#"), strings.HasPrefix(line, ">"):
				flush()
			case strings.HasPrefix(line, "< HTTP/"):
				flush()
				if f := strings.Fields(line); len(f) >= 3 {
					rec.status, _ = strconv.Atoi(f[2])
				}
			case strings.HasPrefix(line, "< "):
				if k, v, ok := strings.Cut(line[2:], ":"); ok {
					rec.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
				}
			default:
				cur.WriteString(line + "\n")
			}
		}
		flush()
		fh.Close()
		out[rec.name] = rec
	}
	return out, nil
}

// findRecorded returns the exchange whose file name starts with prefix.
func findRecorded(tb testing.TB, all map[string]recorded, prefix string) recorded {
	tb.Helper()
	for name, r := range all {
		if strings.HasPrefix(name, prefix) {
			return r
		}
	}
	tb.Fatalf("no recorded exchange %s*", prefix)
	return recorded{}
}
