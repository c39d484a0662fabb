package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mediagw/mediagw/service/inspect/rules"
)

// Account is one named X account of the --accounts file: exactly one of
// Token (a static OAuth 2.0 user token), OAuth2 (refreshed) and OAuth1.
// Every secret is given in the file, or read from an environment variable
// ({env: NAME}) or a file ({file: PATH}), never on the command line:
//
//	accounts:
//	  brand:                      # OAuth 2.0 user context, refreshed
//	    oauth2:
//	      client_id: brand-app
//	      client_secret: {env: BRAND_CLIENT_SECRET}
//	      refresh_token: {file: /run/secrets/brand-refresh-token}
//	  news:                       # OAuth 1.0a user context
//	    oauth1:
//	      consumer_key: ck
//	      consumer_secret: {env: NEWS_CONSUMER_SECRET}
//	      token: at
//	      token_secret: {env: NEWS_TOKEN_SECRET}
//	  ops:                        # a static OAuth 2.0 user token
//	    token: {env: OPS_X_TOKEN}
//
// An account may also change X's media rules where they follow the
// account's tier (package rules names the limits):
//
//	premium:
//	  token: {env: PREMIUM_X_TOKEN}
//	  media_rules:
//	    tweet_video: {max_duration: 125m, max_bytes: 16GiB}
//
// The uploads that use no named account (the --x-* credentials, called
// default, and callers' own X user tokens) take their changes from the
// top-level default_media_rules, written the same way:
//
//	default_media_rules:
//	  tweet_video: {max_duration: 125m, max_bytes: 16GiB}
type Account struct {
	Token  string
	OAuth2 *OAuth2Account
	OAuth1 *OAuth1Account
	// MediaRules changes the default media rules for uploads with this
	// account (nil: the defaults).
	MediaRules rules.Overrides
}

// OAuth2Account is an OAuth 2.0 user context refreshed through the token
// endpoint (TokenURL; empty: X's, <x-api-url>/2/oauth2/token).
type OAuth2Account struct {
	ClientID, ClientSecret, RefreshToken, AccessToken, TokenURL string
}

// OAuth1Account is an OAuth 1.0a user context.
type OAuth1Account struct {
	ConsumerKey, ConsumerSecret, Token, TokenSecret string
}

// AccountsFile is what the --accounts file holds.
type AccountsFile struct {
	// Accounts are the named X accounts.
	Accounts map[string]Account
	// DefaultMediaRules (default_media_rules) changes the default media
	// rules for the uploads that use no named account: with the --x-*
	// credentials and with a caller's own X user token (nil: the
	// defaults).
	DefaultMediaRules rules.Overrides
}

type accountsFile struct {
	Accounts          map[string]accountSpec `yaml:"accounts"`
	DefaultMediaRules yaml.Node              `yaml:"default_media_rules"`
}

type accountSpec struct {
	Token      secret    `yaml:"token"`
	MediaRules yaml.Node `yaml:"media_rules"`
	OAuth2     *struct {
		ClientID     string `yaml:"client_id"`
		ClientSecret secret `yaml:"client_secret"`
		RefreshToken secret `yaml:"refresh_token"`
		AccessToken  secret `yaml:"access_token"`
		TokenURL     string `yaml:"token_url"`
	} `yaml:"oauth2"`
	OAuth1 *struct {
		ConsumerKey    string `yaml:"consumer_key"`
		ConsumerSecret secret `yaml:"consumer_secret"`
		Token          secret `yaml:"token"`
		TokenSecret    secret `yaml:"token_secret"`
	} `yaml:"oauth1"`
}

// secret is a credential written in the file, or {env: NAME}, or
// {file: PATH} (its content, surrounding white space removed).
type secret string

func (s *secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = secret(n.Value)
		return nil
	}
	var ref struct {
		Env  string `yaml:"env"`
		File string `yaml:"file"`
	}
	if err := n.Decode(&ref); err != nil {
		return err
	}
	switch {
	case (ref.Env == "") == (ref.File == ""):
		return fmt.Errorf("line %d: a secret is a string, {env: NAME} or {file: PATH}", n.Line)
	case ref.Env != "":
		v, ok := os.LookupEnv(ref.Env)
		if !ok || v == "" {
			return fmt.Errorf("line %d: environment variable %s is not set", n.Line, ref.Env)
		}
		*s = secret(v)
	default:
		b, err := os.ReadFile(ref.File)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		*s = secret(strings.TrimSpace(string(b)))
	}
	return nil
}

// accountName is what an account may be called (it appears in logs).
var accountName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// LoadAccounts reads the named accounts of the --accounts file.
func LoadAccounts(path string) (map[string]Account, error) {
	f, err := ReadAccountsFile(path)
	if err != nil {
		return nil, err
	}
	return f.Accounts, nil
}

// ReadAccountsFile reads the --accounts file: its accounts and
// default_media_rules. Every error names the file, and the line and field
// where the file shows them.
func ReadAccountsFile(path string) (*AccountsFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--accounts: %w", err)
	}
	var f accountsFile
	if err := strictYAML(raw, &f); err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	out := &AccountsFile{Accounts: map[string]Account{}}
	if out.DefaultMediaRules, err = decodeMediaRules(&f.DefaultMediaRules, "default_media_rules"); err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	var errs []error
	for name, a := range f.Accounts {
		acc, err := a.account()
		switch {
		case name == DefaultAccount:
			err = fmt.Errorf("%q is the --x-* credentials' name; choose another (their media rules are default_media_rules)", name)
		case !accountName.MatchString(name):
			err = fmt.Errorf("names are letters, digits, _ . - (up to 64)")
		}
		if err == nil {
			acc.MediaRules, err = decodeMediaRules(&a.MediaRules, "media_rules")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("account %q: %w", name, err))
			continue
		}
		out.Accounts[name] = acc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	return out, nil
}

func (a accountSpec) account() (Account, error) {
	n := 0
	for _, set := range []bool{a.Token != "", a.OAuth2 != nil, a.OAuth1 != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Account{}, errors.New("give exactly one of token, oauth2 and oauth1")
	}
	switch {
	case a.OAuth2 != nil:
		o := a.OAuth2
		if o.ClientID == "" {
			return Account{}, errors.New("oauth2 needs client_id (and refresh_token, unless its tokens are stored: --secrets-key-file and mediagwctl accounts login)")
		}
		return Account{OAuth2: &OAuth2Account{ClientID: o.ClientID, ClientSecret: string(o.ClientSecret),
			RefreshToken: string(o.RefreshToken), AccessToken: string(o.AccessToken), TokenURL: o.TokenURL}}, nil
	case a.OAuth1 != nil:
		o := a.OAuth1
		if o.ConsumerKey == "" || o.ConsumerSecret == "" || o.Token == "" || o.TokenSecret == "" {
			return Account{}, errors.New("oauth1 needs consumer_key, consumer_secret, token and token_secret")
		}
		return Account{OAuth1: &OAuth1Account{ConsumerKey: o.ConsumerKey, ConsumerSecret: string(o.ConsumerSecret),
			Token: string(o.Token), TokenSecret: string(o.TokenSecret)}}, nil
	}
	return Account{Token: string(a.Token)}, nil
}

// AccountNames lists the accounts, the default first.
func AccountNames[V any](accounts map[string]V) []string {
	names := make([]string, 0, len(accounts))
	for n := range accounts {
		names = append(names, n)
	}
	sort.Strings(names)
	return append([]string{DefaultAccount}, names...)
}

// strictYAML decodes one YAML document into v, refusing unknown keys (a
// misspelt limit must not silently be no limit).
func strictYAML(raw []byte, v any) error {
	d := yaml.NewDecoder(bytes.NewReader(raw))
	d.KnownFields(true)
	err := d.Decode(v)
	var te *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		// "line 3: field tokn not found in type policy.accountSpec" names
		// a Go type; the file's reader knows the key.
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = unknownField.ReplaceAllString(m, "${1}unknown key $2")
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

var unknownField = regexp.MustCompile(`^(line \d+: )field (\S+) not found in type \S+$`)
