package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// TLSFiles serves the certificate, key and client CA of both listeners
// from files. A handshake looks at the files' modification times at most
// once a second and reloads them when they changed (a Kubernetes secret
// update swaps them behind a symlink, which the check follows); SIGHUP
// reloads them at once. A reload that fails keeps what was loaded before.
type TLSFiles struct {
	cert, key, ca string
	log           *slog.Logger

	cur   atomic.Pointer[tlsState]
	watch *fileWatch
}

type tlsState struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil without mTLS
}

// NewTLSFiles loads the files once; an error here stops mediagw.
func NewTLSFiles(cert, key, ca string, log *slog.Logger) (*TLSFiles, error) {
	f := &TLSFiles{cert: cert, key: key, ca: ca, log: log}
	f.watch = newFileWatch(f.paths()...)
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *TLSFiles) paths() []string {
	if f.ca == "" {
		return []string{f.cert, f.key}
	}
	return []string{f.cert, f.key, f.ca}
}

// load reads the files and, when they are valid, serves them from now on.
func (f *TLSFiles) load() error {
	stamps := f.watch.stamp()
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
	f.watch.loaded(stamps)
	f.cur.Store(st)
	return nil
}

// Reload loads the files again, logging the outcome (SIGHUP, or a change).
func (f *TLSFiles) Reload() {
	if err := f.load(); err != nil {
		f.log.Error("TLS files not reloaded; serving the previous ones", "error", err.Error())
		return
	}
	f.log.Info("TLS files reloaded", "tls_cert", f.cert, "tls_client_ca", f.ca)
}

// current returns what handshakes use, reloading first when the files
// changed since they were last looked at.
func (f *TLSFiles) current() *tlsState {
	if f.watch.changed() {
		f.Reload()
	}
	return f.cur.Load()
}

// Config is the TLS configuration of a listener that negotiates
// nextProtos: TLS 1.2 or later, with the current certificate and, under
// mTLS, client certificates required and verified against the current CA.
func (f *TLSFiles) Config(nextProtos ...string) *tls.Config {
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
