package engine

import (
	"testing"
)

func TestValidMediaID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"1", "1912475018862166016"} {
		if err := ValidMediaID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abc", "12/34", "../1", "123456789012345678901", "1 2"} {
		if err := ValidMediaID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
