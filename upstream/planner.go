package upstream

import "fmt"

// MaxSegments is X's limit on segments per upload: segment_index runs from 0
// to 999.
const MaxSegments = 1000

// PlanSegments chooses the segment size for a file of total bytes: the
// preferred size, grown to ceil(total/1000) when the file would otherwise
// need more than [MaxSegments] segments. It returns the size and the number
// of segments. When the size would exceed max it returns an error wrapping
// [ErrSegmentTooLarge]; non-positive arguments wrap [ErrInvalidParams].
//
// Properties (tested): segments ≤ 1000, segSize ≥ preferred, segSize ≤ max,
// segments × segSize ≥ total, and (segments−1) × segSize < total.
func PlanSegments(total, preferred, max int64) (segSize int64, segments int, err error) {
	switch {
	case total < 1:
		return 0, 0, invalidf("total bytes must be at least 1, got %d", total)
	case preferred < 1:
		return 0, 0, invalidf("preferred segment size must be at least 1, got %d", preferred)
	case max < preferred:
		return 0, 0, invalidf("maximum segment size %d is below the preferred %d", max, preferred)
	}
	segSize = preferred
	// ceil(total/1000) without overflow.
	if need := total/MaxSegments + min(total%MaxSegments, 1); need > segSize {
		segSize = need
	}
	if segSize > max {
		return 0, 0, fmt.Errorf("%w: %d bytes need %d-byte segments to fit %d segments, maximum is %d",
			ErrSegmentTooLarge, total, segSize, MaxSegments, max)
	}
	n := total / segSize
	if total%segSize != 0 {
		n++
	}
	return segSize, int(n), nil
}
