package boltledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/mediagw/mediagw/service/ledger"
)

var _ ledger.PendingScanner = (*Ledger)(nil)

// Scan implements ledger.Scanner: it reads every entry in one read
// transaction and then calls fn, so that fn may use the ledger.
func (l *Ledger) Scan(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	var all []*ledger.Entry
	var keys []string
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			e := &ledger.Entry{}
			if err := json.Unmarshal(v, e); err != nil {
				return fmt.Errorf("ledger entry %q is unreadable: %w", k, err)
			}
			all = append(all, e)
			keys = append(keys, string(k))
			return ctx.Err()
		})
	})
	if err != nil {
		return err
	}
	for i, e := range all {
		if !fn(keys[i], e) {
			return nil
		}
	}
	return nil
}

// ScanPending implements ledger.PendingScanner: it reads the keys of the
// index bucket and their entries in one read transaction and then calls
// fn. The index is written with every entry (Put, Sweep) and built anew
// at Open, so it lists what a file written before it existed holds too.
func (l *Ledger) ScanPending(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	var found []*ledger.Entry
	var keys []string
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		return tx.Bucket(pendingBucket).ForEach(func(k, _ []byte) error {
			v := b.Get(k)
			if v == nil {
				return nil // cannot happen: both are written in one transaction
			}
			e := &ledger.Entry{}
			if err := json.Unmarshal(v, e); err != nil {
				return fmt.Errorf("ledger entry %q is unreadable: %w", k, err)
			}
			if e.ActionsPending() {
				found = append(found, e)
				keys = append(keys, string(k))
			}
			return ctx.Err()
		})
	})
	if err != nil {
		return err
	}
	for i, e := range found {
		if !fn(keys[i], e) {
			return nil
		}
	}
	return nil
}

// indexPending adds key to the index of pending actions, or removes it,
// within tx.
func indexPending(tx *bolt.Tx, key []byte, pending bool) error {
	b := tx.Bucket(pendingBucket)
	if pending {
		return b.Put(key, []byte{1})
	}
	return b.Delete(key)
}

// rebuildPending replaces the index of pending actions with keys.
func rebuildPending(tx *bolt.Tx, keys [][]byte) error {
	if err := tx.DeleteBucket(pendingBucket); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	b, err := tx.CreateBucket(pendingBucket)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Put(k, []byte{1}); err != nil {
			return err
		}
	}
	return nil
}
