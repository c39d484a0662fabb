// Package buildinfo says which build of mediagw is running: the version,
// the commit and the build date. `make build` and `make release` stamp them
// with -ldflags -X; a plain `go build` or `go install` leaves them empty and
// they are read from the module and VCS data the Go toolchain embeds
// (debug.ReadBuildInfo), so every binary can name itself.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time:
//
//	-X github.com/mediagw/mediagw/service/buildinfo.Version=v0.1.0
//	-X github.com/mediagw/mediagw/service/buildinfo.Commit=0123abc
//	-X github.com/mediagw/mediagw/service/buildinfo.Date=2026-12-03T09:00:00Z
var (
	Version string
	Commit  string
	Date    string
)

// Info is one build's identity.
type Info struct {
	// Version is a semantic version (v1.2.3), a pseudo-version, or "devel".
	Version string
	// Commit is the VCS revision, with "+dirty" when the tree had changes;
	// "unknown" when the build recorded none.
	Commit string
	// Date is the build (or commit) time in RFC 3339; "unknown" when not
	// recorded.
	Date string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Get returns the running binary's identity: the link-time values where
// set, else what debug.ReadBuildInfo recorded.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	return resolve(Version, Commit, Date, bi, ok)
}

// resolve merges the link-time values with the embedded build information.
func resolve(version, commit, date string, bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if ok && bi != nil {
		in.GoVersion = bi.GoVersion
		var rev, modified, vcsTime string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			case "vcs.time":
				vcsTime = s.Value
			}
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		if in.Commit == "" && rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			in.Commit = rev + modified
		}
		if in.Date == "" {
			in.Date = vcsTime
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// String is the one-line form `mediagw --version` prints, after the
// program's name: "v0.1.0 (commit 0123abc, built 2026-12-03T09:00:00Z, go1.26.8)".
func (in Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", in.Version, in.Commit, in.Date, in.GoVersion)
}

// String is Get().String().
func String() string { return Get().String() }
