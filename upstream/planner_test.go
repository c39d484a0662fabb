package upstream

import (
	"errors"
	"testing"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

func TestPlanSegmentsGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		total, pref, max int64
		wantSize         int64
		wantSegments     int
		wantErr          error
	}{
		{"one byte", 1, 4 * mib, 4 * mib, 4 * mib, 1, nil},
		{"exactly one segment", 4 * mib, 4 * mib, 4 * mib, 4 * mib, 1, nil},
		{"one segment plus one", 4*mib + 1, 4 * mib, 4 * mib, 4 * mib, 2, nil},
		{"1000 segments exactly", 1000 * 4 * mib, 4 * mib, 4 * mib, 4 * mib, 1000, nil},
		{"1000 segments plus one byte", 1000*4*mib + 1, 4 * mib, 5 * mib, 4*mib + 1, 1000, nil},
		{"beyond max", 1000*4*mib + 1, 4 * mib, 4 * mib, 0, 0, ErrSegmentTooLarge},
		{"512 MiB video", 512 * mib, 4 * mib, 4 * mib, 4 * mib, 128, nil},
		{"small preferred grows", 10_000, 1, 100, 10, 1000, nil},
		{"small preferred grows, remainder", 10_001, 1, 100, 11, 910, nil},
		{"16 GiB needs 17 MB segments", 16 << 30, 4 * mib, 4 * mib, 0, 0, ErrSegmentTooLarge},
		{"16 GiB with large max", 16 << 30, 4 * mib, 32 * mib, 17179870, 1000, nil},
		{"zero total", 0, 4 * mib, 4 * mib, 0, 0, ErrInvalidParams},
		{"zero preferred", 1, 0, 4 * mib, 0, 0, ErrInvalidParams},
		{"max below preferred", 1, 4 * mib, 1 * mib, 0, 0, ErrInvalidParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			size, n, err := PlanSegments(tc.total, tc.pref, tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || size != tc.wantSize || n != tc.wantSegments {
				t.Fatalf("PlanSegments(%d, %d, %d) = %d, %d, %v; want %d, %d",
					tc.total, tc.pref, tc.max, size, n, err, tc.wantSize, tc.wantSegments)
			}
		})
	}
}

// checkPlan asserts the planner's properties for one input.
func checkPlan(t *testing.T, total, pref, max int64) {
	t.Helper()
	size, n, err := PlanSegments(total, pref, max)
	if total < 1 || pref < 1 || max < pref {
		if !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("PlanSegments(%d,%d,%d): err = %v, want ErrInvalidParams", total, pref, max, err)
		}
		return
	}
	if err != nil {
		if !errors.Is(err, ErrSegmentTooLarge) {
			t.Fatalf("PlanSegments(%d,%d,%d): unexpected err %v", total, pref, max, err)
		}
		// The error is only allowed when 1000 segments of max cannot hold total.
		if total <= MaxSegments*max && total/MaxSegments <= max && (total+MaxSegments-1)/MaxSegments <= max {
			t.Fatalf("PlanSegments(%d,%d,%d): refused although %d × %d fits", total, pref, max, MaxSegments, max)
		}
		return
	}
	switch {
	case n < 1 || n > MaxSegments:
		t.Fatalf("PlanSegments(%d,%d,%d): %d segments", total, pref, max, n)
	case size < pref:
		t.Fatalf("PlanSegments(%d,%d,%d): size %d below preferred", total, pref, max, size)
	case size > max:
		t.Fatalf("PlanSegments(%d,%d,%d): size %d above max", total, pref, max, size)
	case int64(n)*size < total:
		t.Fatalf("PlanSegments(%d,%d,%d): %d × %d < total", total, pref, max, n, size)
	case int64(n-1)*size >= total:
		t.Fatalf("PlanSegments(%d,%d,%d): last of %d segments of %d would be empty", total, pref, max, n, size)
	case size > pref && int64(MaxSegments)*(size-1) >= total:
		t.Fatalf("PlanSegments(%d,%d,%d): size %d grown more than needed", total, pref, max, size)
	}
}

func TestPlanSegmentsProperties(t *testing.T) {
	t.Parallel()
	for _, total := range []int64{1, 2, 999, 1000, 1001, 4*mib - 1, 4 * mib, 4*mib + 1, 4000 * mib, 4000*mib + 1, 5 << 30, 16 << 30, maxTotalBytes} {
		for _, pref := range []int64{1, 1000, 1 * mib, 4 * mib, 5 * mib} {
			for _, mx := range []int64{pref, 2 * pref, 5 * mib, 64 * mib} {
				checkPlan(t, total, pref, mx)
			}
		}
	}
}

func FuzzPlanSegments(f *testing.F) {
	f.Add(int64(1), 4*mib, 4*mib)
	f.Add(4*mib, 4*mib, 4*mib)
	f.Add(4*mib+1, 4*mib, 4*mib)
	f.Add(1000*4*mib+1, 4*mib, 5*mib)
	f.Add(int64(1577963), mib, 5*mib) // v1_01's total_bytes
	f.Add(int64(708679), mib, 5*mib)  // v2_03's size
	f.Add(int64(maxTotalBytes), 4*mib, 4*mib)
	f.Add(int64(-1), int64(0), int64(-5))
	f.Add(int64(1<<62), int64(1), int64(1<<62))
	f.Fuzz(func(t *testing.T, total, pref, max int64) {
		checkPlan(t, total, pref, max)
	})
}

// TestDialectLimits pins X's limits per dialect and checks the planner at
// them: the largest file is exactly 1000 full segments, one byte more is
// refused.
func TestDialectLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		d               Dialect
		segment, upload int64
	}{
		{DialectV2, 4_194_304, 4_194_304_000},
		{"", 4_194_304, 4_194_304_000},
		{DialectV2Command, 4_194_304, 4_194_304_000},
		{DialectV1, 5_000_000, 5_000_000_000},
		{"v3", 0, 0},
	}
	for _, tc := range cases {
		if got := MaxSegmentBytes(tc.d); got != tc.segment {
			t.Errorf("MaxSegmentBytes(%q) = %d, want %d", tc.d, got, tc.segment)
		}
		if got := MaxUploadBytes(tc.d); got != tc.upload {
			t.Errorf("MaxUploadBytes(%q) = %d, want %d", tc.d, got, tc.upload)
		}
		if tc.segment == 0 {
			continue
		}
		size, n, err := PlanSegments(tc.upload, DefaultSegmentSize, tc.segment)
		if err != nil || size != tc.segment || n != MaxSegments {
			t.Errorf("%q: PlanSegments(largest) = %d, %d, %v; want %d, 1000", tc.d, size, n, err, tc.segment)
		}
		if _, _, err := PlanSegments(tc.upload+1, DefaultSegmentSize, tc.segment); !errors.Is(err, ErrSegmentTooLarge) {
			t.Errorf("%q: PlanSegments(largest+1) err = %v, want ErrSegmentTooLarge", tc.d, err)
		}
	}
}
