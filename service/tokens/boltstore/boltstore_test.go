package boltstore_test

import (
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/mediagw/mediagw/service/tokens"
	"github.com/mediagw/mediagw/service/tokens/boltstore"
	"github.com/mediagw/mediagw/service/tokens/tokenstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a bbolt file; each Open is a restart: the file is closed and
// opened again.
type backend struct {
	path string
	db   *bolt.DB
}

func (b *backend) Open(t *testing.T, kr *tokens.Keyring) tokens.Admin {
	t.Helper()
	if b.db != nil {
		if err := b.db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db, err := bolt.Open(b.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.db = db
	t.Cleanup(func() { _ = db.Close() })
	// The ledger's bucket next to the tokens': the two share the file.
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("uploads"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.New(db, "oauth2-tokens", kr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (b *backend) Raw(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(b.path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestConformance(t *testing.T) {
	tokenstest.Run(t, func(t *testing.T) tokenstest.Backend {
		return &backend{path: filepath.Join(t.TempDir(), "ledger.db")}
	})
}
