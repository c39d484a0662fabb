package bytesize

import "testing"

func TestParse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"40MB", 40e6, true}, {"5MiB", 5 << 20, true},
		{"1.5GB", 1.5e9, true}, {" 2 kib ", 2048, true}, {"8GiB", 8 << 30, true},
		{"", 0, false}, {"MiB", 0, false}, {"5 parsecs", 0, false}, {"99999999999TiB", 0, false}, {"1.2.3MB", 0, false},
	} {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "4MiB", "1.5GB", "9223372036854775807", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := Parse(s); err == nil && n < 0 {
			t.Fatalf("Parse(%q) = %d", s, n)
		}
	})
}
