package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/oauth2"
)

const accountsHelp = `Usage: mediagwctl accounts COMMAND [NAME] [flags]

Manages mediagw's X accounts through its admin port:

  mediagwctl accounts list           every account: kind, state, scopes, expiry
  mediagwctl accounts status NAME    one account, as JSON
  mediagwctl accounts login NAME     authorize NAME on X (OAuth 2.0 with PKCE) and
                                     install its tokens in mediagw, without a restart
  mediagwctl accounts logout NAME    forget NAME's stored tokens

login prints X's authorize URL (and opens it where a browser exists),
receives X's answer on http://127.0.0.1:PORT/callback (RFC 8252; register
that redirect URI in the X developer portal, with --port PORT), and sends
the code to mediagw, which exchanges it with the app's client secret and
stores the pair sealed. login and logout need the admin token
(--admin-token-file, as given to mediagw), or a client certificate
(--cert/--key, https --admin-url) when mediagw runs with --admin-tls.

Example:
  mediagwctl accounts login brand --port 8765 --admin-token-file /run/secrets/mediagw-admin

Exit codes: 0 done, 1 the call failed, 2 usage.
`

// accountsOptions are the flags of the accounts commands.
type accountsOptions struct {
	adminURL  string
	tokenFile string
	port      int
	scopes    string
	noBrowser bool
	timeout   time.Duration
	json      bool
	tls       connOptions // --cacert, --cert, --key for an https --admin-url
}

// accountsFlagNames read MEDIAGWCTL_* when not given.
var accountsFlagNames = []string{"admin-url", "admin-token-file", "cacert", "cert", "key"}

func runAccounts(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	o := &accountsOptions{}
	fs := flag.NewFlagSet("accounts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), accountsHelp)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\n--admin-url and --admin-token-file read MEDIAGWCTL_ADMIN_URL and MEDIAGWCTL_ADMIN_TOKEN_FILE when not given.")
	}
	fs.StringVar(&o.adminURL, "admin-url", "http://127.0.0.1:9091", "mediagw's admin port (its --admin-addr)")
	fs.StringVar(&o.tokenFile, "admin-token-file", "", "file holding mediagw's admin token (its --admin-token-file); login and logout need it")
	fs.IntVar(&o.port, "port", 0, "login: loopback port of the redirect URI http://127.0.0.1:PORT/callback (0: any free port, for the emulator)")
	fs.StringVar(&o.scopes, "scopes", "media.write offline.access", "login: the OAuth 2.0 scopes to ask for (media.write is needed; offline.access gives a refresh token)")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "login: only print the authorize URL, do not try to open a browser")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "login: how long to wait for the approval")
	fs.BoolVar(&o.json, "json", false, "list: one JSON object per account")
	fs.StringVar(&o.tls.CACert, "cacert", "", "https --admin-url: PEM file of the CAs that sign mediagw's certificate (default: the system's)")
	fs.StringVar(&o.tls.Cert, "cert", "", "https --admin-url: PEM client certificate (mediagw --admin-tls); it authorizes login and logout without --admin-token-file")
	fs.StringVar(&o.tls.Key, "key", "", "PEM private key of --cert")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageExit(err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, n := range accountsFlagNames {
		if v := getenv(envName(n)); v != "" && !given[n] {
			_ = fs.Set(n, v)
		}
	}
	want := map[string]int{"list": 0, "status": 1, "login": 1, "logout": 1}
	if len(pos) == 0 {
		fs.Usage()
		return exitUsage
	}
	n, known := want[pos[0]]
	if !known || len(pos) != n+1 {
		fmt.Fprintf(stderr, "mediagwctl accounts: want list, status NAME, login NAME or logout NAME (see mediagwctl accounts --help)\n")
		return exitUsage
	}
	ac := &adminClient{base: strings.TrimRight(o.adminURL, "/"), hc: &http.Client{Timeout: time.Minute}}
	if strings.HasPrefix(ac.base, "https://") {
		cfg, err := tlsConfig(&o.tls)
		if err != nil {
			fmt.Fprintf(stderr, "mediagwctl accounts: %v\n", err)
			return exitUsage
		}
		ac.hc.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	if (pos[0] == "login" || pos[0] == "logout") && (o.tokenFile != "" || o.tls.Cert == "") {
		if o.tokenFile == "" {
			fmt.Fprintf(stderr, "mediagwctl accounts %s: --admin-token-file is required (the file given to mediagw's --admin-token-file), or --cert with mediagw --admin-tls\n", pos[0])
			return exitUsage
		}
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "mediagwctl accounts %s: --admin-token-file: %v\n", pos[0], err)
			return exitUsage
		}
		ac.token = strings.TrimSpace(string(b))
	}
	switch pos[0] {
	case "list":
		err = accountsList(ctx, ac, o, stdout)
	case "status":
		var v map[string]any
		if err = ac.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(pos[1]), nil, &v); err == nil {
			err = json.NewEncoder(stdout).Encode(v)
		}
	case "logout":
		if err = ac.do(ctx, http.MethodDelete, "/v1/accounts/"+url.PathEscape(pos[1])+"/token", nil, nil); err == nil {
			fmt.Fprintf(stdout, "account %s logged out: its stored tokens are deleted\n", pos[1])
		}
	case "login":
		err = accountsLogin(ctx, ac, o, pos[1], stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mediagwctl accounts %s: %v\n", pos[0], err)
		return exitFailed
	}
	return exitOK
}

// adminClient calls mediagw's admin API.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

// do sends body as JSON and decodes the answer into out; a non-2xx answer
// is an error carrying mediagw's one-sentence message.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rb io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rb = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rb)
	if err != nil {
		return fmt.Errorf("--admin-url %q is not a URL", c.base)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("mediagw's admin port %s did not answer (is --admin-url right?)", c.base)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("mediagw's admin port answered HTTP %d", resp.StatusCode)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type accountInfo struct {
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`
	Stored       bool      `json:"stored"`
	Configured   bool      `json:"configured"`
	State        string    `json:"state"`
	Reason       string    `json:"reason"`
	Scopes       []string  `json:"scopes"`
	Expiry       time.Time `json:"expiry"`
	ClientID     string    `json:"client_id"`
	AuthorizeURL string    `json:"authorize_url"`
}

func accountsList(ctx context.Context, ac *adminClient, o *accountsOptions, stdout io.Writer) error {
	var raw struct {
		Accounts []json.RawMessage `json:"accounts"`
	}
	if err := ac.do(ctx, http.MethodGet, "/v1/accounts", nil, &raw); err != nil {
		return err
	}
	if o.json {
		for _, r := range raw.Accounts {
			fmt.Fprintf(stdout, "%s\n", r)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tSCOPES\tEXPIRY")
	for _, r := range raw.Accounts {
		var a accountInfo
		if err := json.Unmarshal(r, &a); err != nil {
			return err
		}
		exp := "-"
		if !a.Expiry.IsZero() {
			exp = a.Expiry.Local().Format(time.RFC3339)
		}
		state := a.State
		if state == "" {
			state = "-"
		}
		if !a.Configured {
			state += " (not configured)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Kind, state, strings.Join(a.Scopes, " "), exp)
	}
	return tw.Flush()
}

// accountsLogin runs Authorization Code with PKCE (S256) and a loopback
// redirect, then hands the code to mediagw.
func accountsLogin(ctx context.Context, ac *adminClient, o *accountsOptions, name string, stdout, stderr io.Writer) error {
	var acct accountInfo
	if err := ac.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(name), nil, &acct); err != nil {
		return err
	}
	if acct.ClientID == "" || acct.AuthorizeURL == "" {
		return fmt.Errorf("account %s is not an OAuth 2.0 account mediagw stores tokens of (it needs oauth2 with a client_id, and mediagw --secrets-key-file)", name)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		return fmt.Errorf("the loopback redirect cannot listen on 127.0.0.1:%d: %v", o.port, err)
	}
	defer l.Close()
	redirect := "http://" + l.Addr().String() + "/callback"
	cfg := &oauth2.Config{ClientID: acct.ClientID, RedirectURL: redirect, Scopes: strings.Fields(o.scopes),
		Endpoint: oauth2.Endpoint{AuthURL: acct.AuthorizeURL}}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	type answer struct {
		code string
		err  error
	}
	got := make(chan answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var a answer
		switch {
		case q.Get("state") != state:
			http.Error(w, "This answer is not for the login mediagwctl started (state differs).", http.StatusBadRequest)
			return // not ours: keep waiting
		case q.Get("error") != "":
			a.err = fmt.Errorf("X did not authorize the app: %s", q.Get("error"))
		case q.Get("code") == "":
			a.err = errors.New("X's answer carries no authorization code")
		default:
			a.code = q.Get("code")
		}
		if a.err != nil {
			http.Error(w, a.err.Error(), http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "mediagw has the authorization: you can close this window.")
		}
		select {
		case got <- a:
		default:
		}
	})}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	fmt.Fprintf(stderr, "Open this URL in a browser, sign in to X as the account %s and approve the app:\n\n  %s\n\nWaiting for X's answer on %s ...\n", name, authURL, redirect)
	if !o.noBrowser {
		openBrowser(authURL)
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var a answer
	select {
	case a = <-got:
	case <-wctx.Done():
		return fmt.Errorf("no answer from X within %s", o.timeout)
	}
	if a.err != nil {
		return a.err
	}
	var out map[string]any
	if err := ac.do(ctx, http.MethodPost, "/v1/accounts/"+url.PathEscape(name)+"/token",
		map[string]string{"code": a.code, "code_verifier": verifier, "redirect_uri": redirect}, &out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "account %s is authorized; mediagw uses it from now on\n", name)
	return json.NewEncoder(stdout).Encode(out)
}

// openBrowser tries the desktop's opener; without one the printed URL is
// the way.
func openBrowser(u string) {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		return
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" && runtime.GOOS != "darwin" {
		return
	}
	if p, err := exec.LookPath(name); err == nil {
		cmd := exec.Command(p, u)
		if cmd.Start() == nil {
			go func() { _ = cmd.Wait() }()
		}
	}
}
