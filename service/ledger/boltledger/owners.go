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

// errNoOwner ends GetOwner's read of a media id with no live record.
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
	v := make([]byte, 8+len(owner))
	binary.BigEndian.PutUint64(v, uint64(time.Now().Add(ttl).UnixNano()))
	copy(v[8:], owner)
	return o.l.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(ownersBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(mediaID), v)
	})
}

// GetOwner returns the record of mediaID; false when it has none.
func (o Owners) GetOwner(_ context.Context, mediaID string) ([]byte, bool, error) {
	var out []byte
	err := o.l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(ownersBucket)
		if b == nil {
			return errNoOwner
		}
		v := b.Get([]byte(mediaID))
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

// sweepOwners removes the records that expired before now.
func sweepOwners(tx *bolt.Tx, now time.Time) (int, error) {
	b := tx.Bucket(ownersBucket)
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
