package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/mediagw/mediagw/service/auth"
	"github.com/mediagw/mediagw/service/policy"
	"github.com/mediagw/mediagw/service/rest"
)

// setupAuth loads the TLS files and the bearer-token keys and returns the
// Authenticator of the configured mechanisms (nil when none is).
func (a *app) setupAuth(tel *telemetry) (*auth.Authenticator, error) {
	c := a.cfg
	var err error
	if c.TLSCert != "" {
		if a.tls, err = auth.NewTLSFiles(c.TLSCert, c.TLSKey, c.TLSClientCA, a.log); err != nil {
			return nil, err
		}
	}
	if !c.authenticated() {
		return nil, nil
	}
	ac := auth.Config{ClientCerts: c.TLSClientCA != "", Logger: a.log.With("component", "auth"), MeterProvider: tel.mp, Route: rest.Route}
	if c.AuthJWKS != "" {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopJWKS = cancel
		if a.jwt, err = auth.NewJWTVerifier(ctx, c.AuthJWKS, c.AuthIssuer, c.AuthAudience, a.log.With("component", "auth")); err != nil {
			return nil, err
		}
		a.jwt.SetType(c.AuthJWTType)
		ac.Tokens = a.jwt
	}
	return auth.New(ac)
}

// checkExposure is the secure default: without authentication mediagw
// serves loopback addresses only, unless --insecure-no-auth says
// otherwise.
func (a *app) checkExposure() error {
	for _, l := range []struct {
		flag, value string
		lis         net.Listener
	}{{"--grpc-addr", a.cfg.GRPCAddr, a.grpcLis}, {"--http-addr", a.cfg.HTTPAddr, a.httpLis}} {
		addr := l.lis.Addr().String()
		switch {
		case isLoopback(l.lis.Addr()):
		case a.cfg.authenticated():
			if a.cfg.AuthJWKS != "" && a.tls == nil {
				a.log.Warn("bearer tokens cross the network in clear text: set --tls-cert and --tls-key unless a mesh encrypts the traffic",
					"listen_addr", addr)
			}
		case a.cfg.InsecureNoAuth:
			a.log.Warn("--insecure-no-auth: serving a non-loopback address without authentication; anyone who reaches it uploads with mediagw's X accounts",
				"listen_addr", addr)
		default:
			return fmt.Errorf("%s %s is not a loopback address and no authentication is configured: set --tls-client-ca (mTLS) or --auth-jwks (JWT bearer tokens), or pass --insecure-no-auth to serve it without authentication",
				l.flag, l.value)
		}
	}
	return nil
}

// loadPolicy reads the --callers file into the policies.
func (a *app) loadPolicy() error {
	if a.cfg.CallersFile == "" {
		return nil
	}
	p, err := policy.LoadCallers(a.cfg.CallersFile, policy.AccountNames(a.accounts))
	if err != nil {
		return err
	}
	if err := a.policies.Set(p); err != nil {
		return fmt.Errorf("--callers %s: %w", a.cfg.CallersFile, err)
	}
	return nil
}

// reload rereads what SIGHUP reloads: the callers file, the TLS files and
// a JWKS file. What fails to load leaves the previous version in use; the
// error returned is the callers file's.
func (a *app) reload() error {
	if a.tls != nil {
		a.tls.Reload()
	}
	if a.jwt != nil {
		a.jwt.Reload()
	}
	if err := a.reloadAccounts(); err != nil {
		a.log.Error("accounts file not reloaded; the previous accounts stay", "error", err.Error())
	} else if a.cfg.AccountsFile != "" {
		a.log.Info("accounts file reloaded", "accounts", policy.AccountNames(a.accounts))
	}
	if a.cfg.CallersFile == "" {
		return nil
	}
	if err := a.loadPolicy(); err != nil {
		a.log.Error("callers file not reloaded; the previous policy stays", "error", err.Error())
		return err
	}
	a.log.Info("callers file reloaded", "callers", a.cfg.CallersFile)
	return nil
}

// reloadOnHUP reloads on every SIGHUP until ctx ends.
func (a *app) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				a.log.Info("SIGHUP: reloading")
				_ = a.reload()
			case <-ctx.Done():
				return
			}
		}
	}()
}
