package boltledger

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ownersBucket holds who uploaded each media id (the status relay's
// OwnerStore): media id → expiry (8 bytes, Unix nanoseconds) and the
// relay's record.
var ownersBucket = []byte("owners")

// errNoOwner ends the read of a key with no live value.
var errNoOwner = errors.New("no owner")

// Owners is the status relay's record of who uploaded which media, in the
// ledger's file: kept for the media's lifetime across restarts, and, unlike
// an in-memory cache, never pushed out by other callers' uploads. Expired
// records are removed by Sweep.
type Owners struct{ l *Ledger }

// Owners returns the ledger's owner records.
func (l *Ledger) Owners() Owners { return Owners{l} }

// PutOwner records owner for mediaID until ttl has passed.
func (o Owners) PutOwner(_ context.Context, mediaID, _ string, owner []byte, ttl time.Duration) error {
	return putExpiring(o.l.db, ownersBucket, mediaID, owner, ttl)
}

// GetOwner returns the record of mediaID; false when it has none.
func (o Owners) GetOwner(_ context.Context, mediaID string) ([]byte, bool, error) {
	return getExpiring(o.l.db, ownersBucket, mediaID)
}

// recordsBucket holds what mediagw keeps of each uploaded media beside the
// entries (mediaops' records: category, media key, ledger key): key →
// expiry (8 bytes, Unix nanoseconds) and the value.
var recordsBucket = []byte("records")

// Records are small values that expire, in the ledger's file: what
// mediagw knows of each uploaded media, kept across restarts for the
// media's lifetime. Expired records are removed by Sweep.
type Records struct{ l *Ledger }

// Records returns the ledger's media records.
func (l *Ledger) Records() Records { return Records{l} }

// Put stores value under key until ttl has passed.
func (r Records) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	return putExpiring(r.l.db, recordsBucket, key, value, ttl)
}

// Get returns the value of key; false when it has none or it expired.
func (r Records) Get(_ context.Context, key string) ([]byte, bool, error) {
	return getExpiring(r.l.db, recordsBucket, key)
}

// putExpiring stores value under key in bucket until ttl has passed.
func putExpiring(db *bolt.DB, bucket []byte, key string, value []byte, ttl time.Duration) error {
	v := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(v, uint64(time.Now().Add(ttl).UnixNano()))
	copy(v[8:], value)
	return db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
}

// getExpiring returns the live value of key in bucket; false when it has
// none.
func getExpiring(db *bolt.DB, bucket []byte, key string) ([]byte, bool, error) {
	var out []byte
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return errNoOwner
		}
		v := b.Get([]byte(key))
		if len(v) < 8 || time.Now().UnixNano() > int64(binary.BigEndian.Uint64(v)) {
			return errNoOwner
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	if errors.Is(err, errNoOwner) {
		return nil, false, nil
	}
	return out, err == nil, err
}

// sweepExpiring removes the values of bucket that expired before now.
func sweepExpiring(tx *bolt.Tx, bucket []byte, now time.Time) (int, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return 0, nil
	}
	var gone [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		if len(v) < 8 || now.UnixNano() > int64(binary.BigEndian.Uint64(v)) {
			gone = append(gone, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range gone {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}
