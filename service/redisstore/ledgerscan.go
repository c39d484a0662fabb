package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/mediagw/mediagw/service/ledger"
)

var _ ledger.Scanner = Ledger{}

// scanBatch is how many entries one MGET of Scan reads.
const scanBatch = 100

// Scan implements ledger.Scanner over the ledger's expiry index (every
// stored entry is in it), reading the entries in batches.
func (l Ledger) Scan(ctx context.Context, fn func(string, *ledger.Entry) bool) error {
	keys, err := l.s.rdb.ZRange(ctx, l.expiries(), 0, -1).Result()
	if err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), scanBatch)
		batch := keys[:n]
		keys = keys[n:]
		names := make([]string, len(batch))
		for i, k := range batch {
			names[i] = l.entryKey(k)
		}
		vals, err := l.s.rdb.MGet(ctx, names...).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // removed since the index was read
			}
			e, err := decode(batch[i], s)
			if err != nil {
				return err
			}
			if !fn(batch[i], e) {
				return nil
			}
		}
	}
	return nil
}
