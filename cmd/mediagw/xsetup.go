package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mediagw/mediagw/upstream"
	"github.com/mediagw/mediagw/upstream/xfake"
)

// embeddedOAuth1 are the OAuth 1.0a keys of the built-in emulator, for
// the v1.1 dialect.
var embeddedOAuth1 = xfake.OAuth1Keys{
	ConsumerKey: "mediagw-embedded-consumer", ConsumerSecret: "mediagw-embedded-consumer-secret",
	Token: "mediagw-embedded-token", TokenSecret: "mediagw-embedded-token-secret",
}

// startEmulator runs the built-in X emulator on a loopback port.
func (a *app) startEmulator() error {
	x := xfake.New(xfake.Options{
		Latency:        a.cfg.EmulatorLatency,
		ProcessingTime: a.cfg.EmulatorProcessingTime,
		MaxSegment:     int64(a.cfg.EmulatorMaxSegment),
		Logger:         a.log.With("component", "xfake"),
		// v1.1 takes OAuth 1.0a only: the emulator checks the signatures
		// of the keys mediagw signs with (see credentials).
		OAuth1: &embeddedOAuth1,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("emulator listener: %w", err)
	}
	a.emulator = &http.Server{Handler: x, ReadHeaderTimeout: 10 * time.Second}
	a.emulator.RegisterOnShutdown(func() { _ = x.Close() })
	go func() { _ = a.emulator.Serve(x.Listener(l)) }()
	a.xURL = "http://" + l.Addr().String()
	a.log.Warn("--emulator: uploads go to the built-in X emulator, not to X; its media ids are fake", "x_api_url", a.xURL)
	return nil
}

// credentials builds the default X credentials from the configuration.
func (a *app) credentials() (upstream.Credentials, bool, error) {
	c := a.cfg
	switch {
	case c.XConsumerKey != "":
		return upstream.OAuth1(c.XConsumerKey, c.XConsumerSecret, c.XOAuth1Token, c.XOAuth1TokenSecret), true, nil
	case c.XRefreshToken != "" || (c.XClientID != "" && c.Secrets.KeyFile != ""): // stored: login may give the first pair
		tokenURL := c.XTokenURL
		if tokenURL == "" {
			tokenURL = strings.TrimRight(a.xURL, "/") + "/2/oauth2/token"
		}
		oc := &oauth2.Config{
			ClientID:     c.XClientID,
			ClientSecret: c.XClientSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		}
		return newOAuth2Spec(oc, &oauth2.Token{AccessToken: c.XToken, RefreshToken: c.XRefreshToken}), true, nil
	case c.XToken != "":
		return upstream.BearerToken(c.XToken), true, nil
	case a.emulator != nil && c.XDialect == "v1.1":
		k := embeddedOAuth1
		return upstream.OAuth1(k.ConsumerKey, k.ConsumerSecret, k.Token, k.TokenSecret), true, nil
	case a.emulator != nil:
		// The built-in emulator accepts any bearer token.
		return upstream.BearerToken("mediagw-embedded"), true, nil
	}
	a.log.Warn("no X credentials configured: every call must carry its own x-access-token")
	return nil, false, nil
}
