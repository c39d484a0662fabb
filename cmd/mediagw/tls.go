package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tlsFiles serves the certificate, key and client CA of both listeners
// from files. A handshake looks at the files' modification times at most
// once a second and reloads them when they changed (a Kubernetes secret
// update swaps them behind a symlink, which the check follows); SIGHUP
// reloads them at once. A reload that fails keeps what was loaded before.
type tlsFiles struct {
	cert, key, ca string
	log           *slog.Logger

	cur atomic.Pointer[tlsState]

	mu      sync.Mutex
	checked time.Time
	stamps  []fileStamp
}

type tlsState struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil without mTLS
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampsOf(paths ...string) []fileStamp {
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
		}
	}
	return out
}

// newTLSFiles loads the files once; an error here stops mediagw.
func newTLSFiles(cert, key, ca string, log *slog.Logger) (*tlsFiles, error) {
	f := &tlsFiles{cert: cert, key: key, ca: ca, log: log}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *tlsFiles) paths() []string {
	if f.ca == "" {
		return []string{f.cert, f.key}
	}
	return []string{f.cert, f.key, f.ca}
}

// load reads the files and, when they are valid, serves them from now on.
func (f *tlsFiles) load() error {
	stamps := stampsOf(f.paths()...)
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	st := &tlsState{cert: &cert}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return fmt.Errorf("--tls-client-ca: %w", err)
		}
		st.pool = x509.NewCertPool()
		if !st.pool.AppendCertsFromPEM(pem) {
			return errors.New("--tls-client-ca: no PEM certificate in " + f.ca)
		}
	}
	f.mu.Lock()
	f.stamps = stamps
	f.checked = time.Now()
	f.mu.Unlock()
	f.cur.Store(st)
	return nil
}

// reload loads the files again, logging the outcome (SIGHUP, or a change).
func (f *tlsFiles) reload() {
	if err := f.load(); err != nil {
		f.log.Error("TLS files not reloaded; serving the previous ones", "error", err.Error())
		return
	}
	f.log.Info("TLS files reloaded", "tls_cert", f.cert, "tls_client_ca", f.ca)
}

// current returns what handshakes use, reloading first when the files
// changed since they were last looked at.
func (f *tlsFiles) current() *tlsState {
	f.mu.Lock()
	var changed bool
	if time.Since(f.checked) >= time.Second {
		f.checked = time.Now()
		now := stampsOf(f.paths()...)
		for i := range now {
			changed = changed || now[i] != f.stamps[i]
		}
		if changed {
			// Looked at again only after the next change, whatever the
			// outcome of this reload.
			f.stamps = now
		}
	}
	f.mu.Unlock()
	if changed {
		f.reload()
	}
	return f.cur.Load()
}

// config is the TLS configuration of a listener that negotiates
// nextProtos: TLS 1.2 or later, with the current certificate and, under
// mTLS, client certificates required and verified against the current CA.
func (f *tlsFiles) config(nextProtos ...string) *tls.Config {
	build := func(st *tlsState) *tls.Config {
		c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos, Certificates: []tls.Certificate{*st.cert}}
		if st.pool != nil {
			c.ClientCAs = st.pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c
	}
	base := build(f.cur.Load())
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return build(f.current()), nil
	}
	return base
}
