package upstream

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mediagw/mediagw/upstream/xfake"
	"github.com/mediagw/mediagw/upstream/xfake/xfaketest"
)

// TestRecognisesEmulatorAnswers checks, per dialect, that the answers a
// retried FINALIZE meets are recognised: "already finalized" on the second
// FINALIZE, and "not found" on STATUS of media that never had processing.
func TestRecognisesEmulatorAnswers(t *testing.T) {
	t.Parallel()
	keys := xfake.OAuth1Keys{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "t", TokenSecret: "ts"}
	for _, d := range []Dialect{DialectV2, DialectV2Command, DialectV1} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := xfaketest.New(t, xfake.Options{Seed: 30, OAuth1: &keys})
			c, err := New(Config{BaseURL: srv.URL, Dialect: d, Credentials: OAuth1(keys.ConsumerKey, keys.ConsumerSecret, keys.Token, keys.TokenSecret)})
			if err != nil {
				t.Fatal(err)
			}
			defer closeIdle(c)
			ctx := context.Background()
			m, err := uploadAll(ctx, c, nil, InitParams{MediaType: "video/mp2t", TotalBytes: 3}, bytes.NewReader([]byte{0x47, 1, 2}))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.call(ctx, c.cfg.Credentials, c.d.finalizeReq(m.ID), callOpts{})
			var ae *APIError
			if !errors.As(err, &ae) || !alreadyFinalized(ae) {
				t.Fatalf("second FINALIZE: %v", err)
			}
			_, err = c.Status(ctx, nil, m.ID)
			if !notFound(err) {
				t.Fatalf("STATUS of sync media: %v", err)
			}
		})
	}
}
