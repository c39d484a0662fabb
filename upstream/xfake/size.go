package xfake

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "kib": 1 << 10, "ki": 1 << 10,
	"m": 1e6, "mb": 1e6, "mib": 1 << 20, "mi": 1 << 20,
	"g": 1e9, "gb": 1e9, "gib": 1 << 30, "gi": 1 << 30,
	"t": 1e12, "tb": 1e12, "tib": 1 << 40, "ti": 1 << 40,
}

// ParseSize parses a byte size such as "0", "1048576", "40MB" (decimal,
// 40,000,000), "5MiB" (binary, 5,242,880) or "1.5GB". Units are
// case-insensitive: B, K/KB, KiB, M/MB, MiB, G/GB, GiB, T/TB, TiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("xfake: invalid size %q (want e.g. 0, 512KiB, 40MB, 5MiB)", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && (n == 0 || int64(mult) <= math.MaxInt64/n) {
			return n * int64(mult), nil
		}
		if err == nil {
			return 0, fmt.Errorf("xfake: size %q overflows", s)
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("xfake: invalid size %q", s)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("xfake: size %q overflows", s)
	}
	return int64(v), nil
}

// ParseRateLimit parses "key=N/window", e.g. "append=100/15m" or
// "v1.1-init=200/15m"; N = 0 disables the key's limit.
func ParseRateLimit(s string) (string, RateLimit, error) {
	key, spec, ok := strings.Cut(strings.TrimSpace(s), "=")
	n, window, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 {
		return "", RateLimit{}, fmt.Errorf("xfake: invalid rate limit %q (want key=N/window, e.g. append=100/15m)", s)
	}
	if _, known := DefaultRateLimits()[key]; !known {
		return "", RateLimit{}, fmt.Errorf("xfake: unknown rate-limit key %q", key)
	}
	limit, err := strconv.Atoi(n)
	if err != nil || limit < 0 {
		return "", RateLimit{}, fmt.Errorf("xfake: invalid rate limit count in %q", s)
	}
	w, err := time.ParseDuration(window)
	if err != nil || w <= 0 {
		return "", RateLimit{}, fmt.Errorf("xfake: invalid rate limit window in %q", s)
	}
	return key, RateLimit{Limit: limit, Window: w}, nil
}
