package main

import (
	"strings"

	"golang.org/x/oauth2"

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
