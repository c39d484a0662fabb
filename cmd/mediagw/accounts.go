package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/service/inspect/rules"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/upstream"
)

// loadAccounts reads the --accounts file into credentials by name. xURL
// is the X API, whose /2/oauth2/token refreshes OAuth 2.0 tokens unless an
// account names its token_url.
func loadAccounts(path, xURL string) (map[string]upstream.Credentials, error) {
	accounts, err := policy.LoadAccounts(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]upstream.Credentials, len(accounts))
	for name, a := range accounts {
		out[name] = credentialsOf(a, xURL)
	}
	return out, nil
}

// warnEmulatorKeys says, on the built-in emulator, which OAuth 1.0a
// accounts it will refuse: it verifies OAuth 1.0a signatures with its own
// keys only (X would answer those accounts with its own keys), and its 401
// says no more than X's.
func warnEmulatorKeys(log *slog.Logger, path string) {
	accounts, err := policy.LoadAccounts(path)
	if err != nil {
		return
	}
	for name, a := range accounts {
		if o := a.OAuth1; o != nil && (o.ConsumerKey != embeddedOAuth1.ConsumerKey || o.Token != embeddedOAuth1.Token) {
			log.Warn("the built-in emulator refuses this OAuth 1.0a account's keys (X answers HTTP 401): on --emulator, OAuth 1.0a accounts sign with the emulator's keys",
				"account", name, "consumer_key", embeddedOAuth1.ConsumerKey, "token", embeddedOAuth1.Token)
		}
	}
}

func credentialsOf(a policy.Account, xURL string) upstream.Credentials {
	switch {
	case a.OAuth2 != nil:
		o := a.OAuth2
		tokenURL := o.TokenURL
		if tokenURL == "" {
			tokenURL = strings.TrimRight(xURL, "/") + "/2/oauth2/token"
		}
		oc := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
		return newOAuth2Spec(oc, &oauth2.Token{AccessToken: o.AccessToken, RefreshToken: o.RefreshToken})
	case a.OAuth1 != nil:
		o := a.OAuth1
		return upstream.OAuth1(o.ConsumerKey, o.ConsumerSecret, o.Token, o.TokenSecret)
	}
	return upstream.BearerToken(a.Token)
}

// loadAccountRules reads the media rules of the --accounts file: those of
// the accounts that change them (media_rules) by name, and under "" those
// of the uploads with the default credentials or a caller's own token
// (default_media_rules).
func loadAccountRules(path string) (map[string]rules.Profile, error) {
	f, err := policy.ReadAccountsFile(path)
	if err != nil {
		return nil, err
	}
	r, err := f.MediaRules()
	if err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", path, err)
	}
	return r, nil
}

// mediaRules is the engine's lookup of an account's media rules ("": the
// default credentials and callers' own tokens): nil (the defaults) for an
// account that changes none. The rules are those
// *byAccount holds when an upload starts: SIGHUP replaces them.
func mediaRules(byAccount *atomic.Pointer[map[string]rules.Profile]) func(string) rules.Profile {
	return func(account string) rules.Profile {
		if m := byAccount.Load(); m != nil {
			return (*m)[account]
		}
		return nil
	}
}
