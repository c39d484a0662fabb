package boltledger

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/service/ledger"
)

var _ ledger.Scanner = (*Ledger)(nil)

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
