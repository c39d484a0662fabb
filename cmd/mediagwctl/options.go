package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// connOptions are the flags every command shares: where mediagw is and
// how to authenticate. Each has an environment twin, MEDIAGWCTL_ and the
// flag name in upper case with underscores; a flag on the command line
// wins.
type connOptions struct {
	Server           string
	RESTURL          string
	REST             bool
	Plaintext        bool
	CACert           string
	Cert             string
	Key              string
	Token            string
	TokenFile        string
	XAccessTokenFile string
	Account          string
	Retries          int
	StallTimeout     time.Duration
}

// connFlagNames are the flags that read MEDIAGWCTL_* when not given.
var connFlagNames = []string{"server", "rest-url", "rest", "plaintext", "cacert", "cert", "key",
	"token", "token-file", "x-access-token-file", "account", "retries", "stall-timeout"}

func (o *connOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", "127.0.0.1:9090", "mediagw's gRPC address (host:port)")
	fs.StringVar(&o.RESTURL, "rest-url", "http://127.0.0.1:8080", "mediagw's REST base URL, used with --rest")
	fs.BoolVar(&o.REST, "rest", false, "use the REST API instead of gRPC")
	fs.BoolVar(&o.Plaintext, "plaintext", false, "gRPC without TLS (the default for a loopback --server without TLS flags)")
	fs.StringVar(&o.CACert, "cacert", "", "PEM file of the CAs that sign mediagw's certificate (default: the system's)")
	fs.StringVar(&o.Cert, "cert", "", "PEM client certificate, for mutual TLS")
	fs.StringVar(&o.Key, "key", "", "PEM private key of --cert")
	fs.StringVar(&o.Token, "token", "", "the caller's JWT, sent as a bearer token (prefer MEDIAGWCTL_TOKEN or --token-file)")
	fs.StringVar(&o.TokenFile, "token-file", "", "file holding the caller's JWT (read again before every call)")
	fs.StringVar(&o.XAccessTokenFile, "x-access-token-file", "", "file holding an X user's OAuth 2.0 token, to upload as that user")
	fs.StringVar(&o.Account, "account", "", "the configured X account to upload with (default: the caller's)")
	fs.IntVar(&o.Retries, "retries", 10, "retries in a row without progress before giving up")
	fs.DurationVar(&o.StallTimeout, "stall-timeout", time.Minute, "resume when sending stalls this long")
}

// applyEnv sets every connection flag not given on the command line from
// its environment twin.
func applyEnv(fs *flag.FlagSet, getenv env) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range connFlagNames {
		f := fs.Lookup(name)
		if f == nil || given[name] {
			continue
		}
		ev := envName(name)
		if v := getenv(ev); v != "" {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("%s: %w", ev, err)
			}
		}
	}
	return nil
}

func envName(flagName string) string {
	return "MEDIAGWCTL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// validate checks the connection flags together.
func (o *connOptions) validate() error {
	if o.Token != "" && o.TokenFile != "" {
		return fmt.Errorf("--token and --token-file are exclusive")
	}
	if (o.Cert == "") != (o.Key == "") {
		return fmt.Errorf("--cert and --key go together")
	}
	if o.Plaintext && (o.CACert != "" || o.Cert != "") {
		return fmt.Errorf("--plaintext excludes --cacert, --cert and --key")
	}
	if o.Retries < 0 {
		return fmt.Errorf("--retries must be 0 or more")
	}
	if o.StallTimeout <= 0 {
		return fmt.Errorf("--stall-timeout must be positive")
	}
	if o.REST {
		u, err := url.Parse(o.RESTURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--rest-url %q is not an http or https URL", o.RESTURL)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(o.Server); err != nil {
		return fmt.Errorf("--server %q is not host:port: %v", o.Server, err)
	}
	return nil
}

// useTLS says whether the gRPC connection uses TLS: always with a TLS
// flag, never with --plaintext, and otherwise unless the server is on
// loopback (as `make run` is).
func (o *connOptions) useTLS() bool {
	switch {
	case o.Plaintext:
		return false
	case o.CACert != "" || o.Cert != "":
		return true
	}
	host, _, _ := net.SplitHostPort(o.Server)
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// newFlagSet returns a flag set that reports to stderr with the given
// usage text above the flag defaults.
func newFlagSet(name, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nConnection flags read MEDIAGWCTL_<FLAG> (e.g. MEDIAGWCTL_SERVER, MEDIAGWCTL_TOKEN) when not given.")
	}
	return fs
}
