package engine

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestClaimSpoolDir: a directory whose process is gone (here: a lock file
// nobody holds, as a killed process leaves it) is cleaned by the next
// claim; a live claim's directory is left alone, and its release removes
// it.
func TestClaimSpoolDir(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	// A dead process's directory: its lock file exists, unlocked.
	dead := filepath.Join(parent, "p999999999")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".lock", "mediagw-spool-1", "segments"} {
		if err := os.WriteFile(filepath.Join(dead, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Older than a minute: a claim in progress is younger.
	old := time.Now().Add(-2 * time.Minute)
	young := filepath.Join(parent, "p999999998")
	for _, d := range []string{dead, young} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dead, old, old); err != nil {
		t.Fatal(err)
	}
	// A live process's directory: its lock held by a child process.
	live := filepath.Join(parent, "p1")
	if err := os.MkdirAll(live, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(live, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) is not installed")
	}
	// The child says "locked" once it holds the lock, then holds it until
	// its standard input closes.
	holder := exec.Command("flock", filepath.Join(live, ".lock"), "sh", "-c", "echo locked; read _")
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = holder.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("the lock holder said %q, %v", line, err)
	}

	dir, release, err := ClaimSpoolDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("the dead process's spool is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the live process's spool was removed: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a spool made a moment ago was removed: %v", err)
	}
	if filepath.Dir(dir) != parent {
		t.Fatalf("claimed %s, not under %s", dir, parent)
	}
	release()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("released spool %s is still there", dir)
	}
}
