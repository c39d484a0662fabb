package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/service/engine"
	"github.com/mediagw/mediagw/service/ledger/boltledger"
	"github.com/mediagw/mediagw/service/redisstore"
)

// sweepEvery is how often expired ledger entries are removed.
const sweepEvery = 10 * time.Minute

// openLedger opens the ledger --ledger names: a file path (the embedded
// bbolt ledger; by default under the user's state directory), a Redis URL
// (the state replicas share: ledger, status relay, rate-limit budgets) or
// "off".
func (a *app) openLedger(ctx context.Context) error {
	spec := a.cfg.Ledger
	switch {
	case spec == "off":
		a.log.Warn("--ledger off: uploads with an idempotency key are refused, nothing is resumable")
		return a.claimSpool()
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		return a.openRedis(ctx, spec)
	case spec == "":
		p, err := boltledger.DefaultPath()
		if err != nil {
			return fmt.Errorf("--ledger: %w", err)
		}
		spec = p
	}
	l, err := boltledger.Open(spec)
	if err != nil {
		return err
	}
	a.ledger = l
	a.spoolDir = a.cfg.SpoolDir
	if a.spoolDir == "" {
		a.spoolDir = l.Path() + ".spool"
	}
	a.log.Info("upload ledger", "ledger", "bbolt", "path", l.Path(), "spool_dir", a.spoolDir)
	a.startSweeper()
	return nil
}

// openRedis connects to the shared Redis. The URL may carry a password:
// it is never logged (set it through MEDIAGW_LEDGER to keep it off the
// command line).
func (a *app) openRedis(ctx context.Context, url string) error {
	st, err := redisstore.Open(ctx, url, redisstore.Options{
		LeaseTTL: a.cfg.LeaseTTL,
		Logger:   a.log.With("component", "redis"),
		OnHealth: a.sharedHealth,
	})
	if err != nil {
		return fmt.Errorf("--ledger: %w", err)
	}
	a.shared = st
	a.ledger = st.Ledger()
	// A spooled upload (of unknown size) stays on the replica it came to.
	if err := a.claimSpool(); err != nil {
		return err
	}
	a.log.Info("upload ledger", "ledger", "redis", "addr", st.Addr(), "lease_ttl", a.cfg.LeaseTTL.String(),
		"shared", "ledger, status relay, rate-limit budgets", "spool_dir", a.spoolDir)
	a.startSweeper()
	return nil
}

// claimSpool picks the spool directory of a mediagw without a ledger file
// beside which to keep it: --spool-dir, else a directory of this process's
// own under the temporary directory, where what a killed mediagw left is
// removed by the next one to start.
func (a *app) claimSpool() error {
	if a.cfg.SpoolDir != "" {
		a.spoolDir = a.cfg.SpoolDir
		return nil
	}
	dir, release, err := engine.ClaimSpoolDir(filepath.Join(os.TempDir(), "mediagw-spool"))
	if err != nil {
		return err
	}
	a.spoolDir, a.releaseSpool = dir, release
	return nil
}

// startSweeper removes expired entries now and every sweepEvery.
func (a *app) startSweeper() {
	a.sweepStop = make(chan struct{})
	stop, l := a.sweepStop, a.ledger
	go func() {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := l.Sweep(ctx, time.Now())
			cancel()
			if err != nil {
				a.log.Warn("ledger sweep failed", "error", err.Error())
			} else if n > 0 {
				a.log.Info("ledger sweep", "removed", n)
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
}
