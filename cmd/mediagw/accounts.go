package main

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
	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service"
	"github.com/mediagw/mediagw/upstream"
)

// accountsFile is the --accounts file: named X accounts a caller chooses
// per upload (UploadStart.account, REST account=). Every secret is given
// in the file, or read from an environment variable ({env: NAME}) or a
// file ({file: PATH}), never on the command line:
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
type accountsFile struct {
	Accounts map[string]accountSpec `yaml:"accounts"`
}

type accountSpec struct {
	Token  secret `yaml:"token"`
	OAuth2 *struct {
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

// loadAccounts reads the --accounts file into credentials by name.
// xURL is the X API, whose /2/oauth2/token refreshes OAuth 2.0 tokens
// unless an account names its token_url.
func loadAccounts(path, xURL string) (map[string]upstream.Credentials, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--accounts: %w", err)
	}
	var f accountsFile
	if err := strictYAML(raw, &f); err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	out := map[string]upstream.Credentials{}
	var errs []error
	for name, a := range f.Accounts {
		c, err := a.credentials(xURL)
		switch {
		case name == service.DefaultAccount:
			err = fmt.Errorf("%q is the --x-* credentials' name; choose another", name)
		case !accountName.MatchString(name):
			err = fmt.Errorf("names are letters, digits, _ . - (up to 64)")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("account %q: %w", name, err))
			continue
		}
		out[name] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	return out, nil
}

func (a accountSpec) credentials(xURL string) (upstream.Credentials, error) {
	n := 0
	for _, set := range []bool{a.Token != "", a.OAuth2 != nil, a.OAuth1 != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give exactly one of token, oauth2 and oauth1")
	}
	switch {
	case a.OAuth2 != nil:
		o := a.OAuth2
		if o.ClientID == "" {
			return nil, errors.New("oauth2 needs client_id (and refresh_token, unless its tokens are stored: --secrets-key-file and mediagwctl accounts login)")
		}
		tokenURL := o.TokenURL
		if tokenURL == "" {
			tokenURL = strings.TrimRight(xURL, "/") + "/2/oauth2/token"
		}
		oc := &oauth2.Config{ClientID: o.ClientID, ClientSecret: string(o.ClientSecret),
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
		return newOAuth2Spec(oc, &oauth2.Token{AccessToken: string(o.AccessToken), RefreshToken: string(o.RefreshToken)}), nil
	case a.OAuth1 != nil:
		o := a.OAuth1
		if o.ConsumerKey == "" || o.ConsumerSecret == "" || o.Token == "" || o.TokenSecret == "" {
			return nil, errors.New("oauth1 needs consumer_key, consumer_secret, token and token_secret")
		}
		return upstream.OAuth1(o.ConsumerKey, string(o.ConsumerSecret), string(o.Token), string(o.TokenSecret)), nil
	}
	return upstream.BearerToken(string(a.Token)), nil
}

// strictYAML decodes one YAML document into v, refusing unknown keys (a
// misspelt limit must not silently be no limit).
func strictYAML(raw []byte, v any) error {
	d := yaml.NewDecoder(bytes.NewReader(raw))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// accountNames lists the configured accounts, the default first.
func accountNames(accounts map[string]upstream.Credentials) []string {
	names := make([]string, 0, len(accounts))
	for n := range accounts {
		names = append(names, n)
	}
	sort.Strings(names)
	return append([]string{service.DefaultAccount}, names...)
}
