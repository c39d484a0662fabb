package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/status"

	"github.com/mediagw/mediagw/service/client"
)

// fileToken is a token read from a file at every call, so that a rotated
// token is picked up by the next retry.
type fileToken struct{ path, flagName string }

func (f fileToken) Token() (*oauth2.Token, error) {
	t, err := readToken(f.path, f.flagName)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t}, nil
}

func readToken(path, flagName string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s: %s is empty", flagName, path)
	}
	return t, nil
}

// tlsConfig builds the client TLS configuration from --cacert, --cert
// and --key.
func tlsConfig(o *connOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", o.CACert)
		}
		cfg.RootCAs = pool
	}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// retryPolicy is the client's policy with --retries: backoff from 0.5 s,
// ×1.6, up to 30 s, with no overall bound (Ctrl-C ends it).
func retryPolicy(retries int) client.RetryPolicy {
	p := client.DefaultRetryPolicy()
	p.MaxRetries, p.MaxElapsed = retries, 0
	return p
}

// newClient connects to mediagw as the options say; notify is told of
// every retry of a watch.
func newClient(o *connOptions, notify func(client.Retry)) (*client.Client, error) {
	opts := []client.Option{client.WithRetry(retryPolicy(o.Retries)), client.WithStallTimeout(o.StallTimeout),
		client.WithKeyPrefix("ctl-")}
	if notify != nil {
		opts = append(opts, client.WithRetryNotify(notify))
	}
	switch {
	case o.TokenFile != "":
		opts = append(opts, client.WithTokenSource(fileToken{o.TokenFile, "--token-file"}))
	case o.Token != "":
		opts = append(opts, client.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.Token})))
	}
	target := o.Server
	if o.REST {
		target = ""
		opts = append(opts, client.WithREST(o.RESTURL))
	}
	if (o.REST && strings.HasPrefix(o.RESTURL, "https:")) || (!o.REST && o.useTLS()) {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTLS(cfg))
	} else if !o.REST {
		opts = append(opts, client.WithInsecure())
	}
	c, err := client.New(target, opts...)
	if err != nil {
		if o.REST {
			return nil, fmt.Errorf("--rest-url %s: %w", o.RESTURL, err)
		}
		return nil, fmt.Errorf("--server %s: %w", o.Server, err)
	}
	return c, nil
}

// withXToken makes ctx's calls carry the X user token of
// --x-access-token-file, read at every call.
func withXToken(ctx context.Context, o *connOptions) context.Context {
	if o.XAccessTokenFile == "" {
		return ctx
	}
	return client.ContextWithXTokenSource(ctx, fileToken{o.XAccessTokenFile, "--x-access-token-file"})
}

// describe renders an error for a person: the client's errors as their
// code and message (a give-up or a local failure as its message), any
// other error as its text.
func describe(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		switch e.Reason {
		case client.ReasonGaveUp, client.ReasonLocal:
			return e.Message
		}
		return e.Code.String() + ": " + e.Message
	}
	if se, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		st := se.GRPCStatus()
		return st.Code().String() + ": " + st.Message()
	}
	return err.Error()
}

// humanBytes renders n in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// barProgress turns the client's progress reports into the bar's
// starting offsets and increments.
func barProgress(p progress) func(client.Progress) {
	last, resumes := int64(-1), -1
	var lastAt time.Time
	return func(pr client.Progress) {
		now := time.Now()
		if last < 0 || pr.Resumes != resumes || pr.Sent < last {
			p.at(pr.Sent)
			last, resumes, lastAt = pr.Sent, pr.Resumes, now
			return
		}
		if pr.Sent > last {
			p.add(int(pr.Sent-last), now.Sub(lastAt))
			last, lastAt = pr.Sent, now
		}
	}
}
