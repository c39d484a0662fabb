package main

import (
	"strings"
	"testing"

	"github.com/mediagw/mediagw/service/policy"
)

// TestLoadAccounts reads secrets from the file, the environment and
// files, and refuses what would run with the wrong credentials.
func TestLoadAccounts(t *testing.T) {
	t.Setenv("TEST_NEWS_SECRET", "s3cret")
	secretFile := writeFile(t, "rt", []byte("refresh-token-1\n"))
	good := `accounts:
  brand:
    oauth2:
      client_id: app
      client_secret: {env: TEST_NEWS_SECRET}
      refresh_token: {file: ` + secretFile + `}
  news:
    oauth1: {consumer_key: ck, consumer_secret: {env: TEST_NEWS_SECRET}, token: at, token_secret: ts}
  ops:
    token: plain
`
	accounts, err := loadAccounts(writeFile(t, "a.yaml", []byte(good)), "http://x.test")
	if err != nil || len(accounts) != 3 {
		t.Fatalf("%v %v", accounts, err)
	}
	if got := strings.Join(policy.AccountNames(accounts), ","); got != "default,brand,news,ops" {
		t.Fatalf("names %s", got)
	}
	for name, c := range map[string]string{
		"an unset variable":     "accounts:\n  a:\n    token: {env: TEST_UNSET_VARIABLE_X}\n",
		"a missing file":        "accounts:\n  a:\n    token: {file: /nonexistent/token}\n",
		"the default name":      "accounts:\n  default:\n    token: t\n",
		"two kinds":             "accounts:\n  a:\n    token: t\n    oauth1: {consumer_key: ck, consumer_secret: cs, token: at, token_secret: ts}\n",
		"an incomplete oauth1":  "accounts:\n  a:\n    oauth1: {consumer_key: ck}\n",
		"oauth2 without client": "accounts:\n  a:\n    oauth2: {refresh_token: rt}\n",
		"an unknown key":        "accounts:\n  a:\n    tokn: t\n",
		"a bad name":            "accounts:\n  a b:\n    token: t\n",
	} {
		if _, err := loadAccounts(writeFile(t, "bad.yaml", []byte(c)), "http://x.test"); err == nil {
			t.Errorf("%s: loaded", name)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}

func TestLoadCallers(t *testing.T) {
	t.Parallel()
	p, err := policy.LoadCallers(writeFile(t, "c.yaml", []byte(testCallers+"others:\n  accounts: [default]\n  bytes_per_day: 10GB\n")),
		[]string{policy.DefaultAccount, "brand", "news", "refreshed", "legacy"})
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Callers["alice"]; a.MaxFileBytes != 1<<20 || len(a.Accounts) != 2 || a.UserTokens {
		t.Fatalf("alice: %+v", a)
	}
	if p.Callers["erin"].BytesPerHour != 3<<20 || p.Others == nil || p.Others.BytesPerDay != 10e9 {
		t.Fatalf("%+v %+v", p.Callers["erin"], p.Others)
	}
	for name, c := range map[string]string{
		"an unknown account":        "callers:\n  a:\n    accounts: [nope]\n",
		"a default it may not use":  "callers:\n  a:\n    accounts: [default]\n    default_account: brand\n",
		"a negative limit":          "callers:\n  a:\n    max_concurrent_uploads: -1\n",
		"a bad size":                "callers:\n  a:\n    bytes_per_hour: lots\n",
		"a misspelt key":            "callers:\n  a:\n    max_file_byte: 1MiB\n",
		"two callers with one name": "callers:\n  a:\n    name: x\n  b:\n    name: x\n",
		"a reserved name":           "callers:\n  a:\n    name: other\n",
	} {
		if _, err := policy.LoadCallers(writeFile(t, "bad.yaml", []byte(c)), []string{policy.DefaultAccount, "brand"}); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
