package tokens_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/tokens"
)

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{7}, tokens.KeySize)
	ids := map[string]bool{}
	for name, content := range map[string][]byte{
		"raw": raw, "hex": []byte(hex.EncodeToString(raw) + "\n"), "b64": []byte(base64.StdEncoding.EncodeToString(raw)),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := tokens.LoadKeyFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ids[k.ID()] = true
	}
	if len(ids) != 1 {
		t.Errorf("one key in three encodings gave ids %v", ids)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("0123456789"), 0o600)
	if _, err := tokens.LoadKeyFile(short); err == nil || !strings.Contains(err.Error(), short) {
		t.Errorf("short key: %v", err)
	}
	open := filepath.Join(dir, "open")
	_ = os.WriteFile(open, raw, 0o644)
	if _, err := tokens.LoadKeyFile(open); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	if _, err := tokens.LoadKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing key: %v", err)
	}
}

func TestSealBindsAccount(t *testing.T) {
	k, err := tokens.NewKey(bytes.Repeat([]byte{1}, tokens.KeySize), "/etc/k")
	if err != nil {
		t.Fatal(err)
	}
	kr := tokens.NewKeyring(k)
	sealed, err := kr.Seal("alice", &oauth2.Token{AccessToken: "AT", RefreshToken: "RT"})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := kr.Open("alice", sealed); err != nil || tok.RefreshToken != "RT" {
		t.Fatalf("Open = %v, %v", tok, err)
	}
	if _, err := kr.Open("bob", sealed); err == nil || !strings.Contains(err.Error(), "/etc/k") {
		t.Errorf("a value moved to another account opened: %v", err)
	}
	sealed[len(sealed)-2] ^= 1
	if _, err := kr.Open("alice", sealed); err == nil {
		t.Error("a tampered value opened")
	}
}
