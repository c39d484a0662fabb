package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"
)

// startAdmin serves what operators and their tools read, apart from the
// public ports and without authentication: /metrics (Prometheus text),
// /healthz (the process is up), /readyz (it takes calls: not while
// starting or draining, nor while the shared state is unreachable) and,
// with --pprof, /debug/pprof/.
func (a *app) startAdmin(addr string, metrics http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	a.adminLis = l
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.readyz)
	a.adminAccounts(mux)
	if a.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		// The command line may hold secrets given as flags: only the
		// program's name is shown.
		mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(filepath.Base(os.Args[0])))
		})
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	a.adminSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := a.adminTLS(); err != nil {
		return err
	}
	if !isLoopback(l.Addr()) {
		a.log.Warn("the admin endpoints (metrics, health and, with --pprof, pprof) have no authentication and listen on a non-loopback address; keep that address off the public network",
			"admin_addr", l.Addr().String())
	}
	return nil
}

// isLoopback reports whether a listener's address is a loopback address
// (an unspecified one, such as :8080, listens on every interface).
func isLoopback(addr net.Addr) bool {
	t, ok := addr.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}
