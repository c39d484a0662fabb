package upstream

// MaxSegments is X's limit on segments per upload: segment_index runs from 0
// to 999.
const MaxSegments = 1000

// Largest APPEND media per dialect (see "Segments" in the package
// documentation for the evidence).
const (
	// maxSegmentV2 is 4 MiB: the size X's own tools send on v2, where a
	// 5 MiB APPEND met 413 and nothing in between is known to pass.
	maxSegmentV2 = 4 << 20
	// maxSegmentV1 is 5 MB, X's documented limit of an APPEND's media on
	// v1.1, read as 5,000,000 bytes: the smaller of its two readings.
	maxSegmentV1 = 5_000_000
)

// MaxSegmentBytes returns the largest segment (the media bytes of one
// APPEND) X takes in dialect d: 4 MiB (4,194,304 bytes) on v2, dedicated
// and command style, and 5,000,000 bytes on v1.1. It returns 0 for an
// unknown dialect; "" is v2, the default.
func MaxSegmentBytes(d Dialect) int64 {
	switch d {
	case "", DialectV2, DialectV2Command:
		return maxSegmentV2
	case DialectV1:
		return maxSegmentV1
	}
	return 0
}

// MaxUploadBytes returns the largest file that can be uploaded in dialect
// d: [MaxSegments] segments of [MaxSegmentBytes], within X's total_bytes
// limit of 16 GiB. That is 4,194,304,000 bytes (4000 MiB) on v2 and
// 5,000,000,000 bytes on v1.1; 0 for an unknown dialect. A file of this
// size is planned as exactly 1000 full segments; one byte more is refused
// with [ErrSegmentTooLarge] before INIT. [Client.MaxUploadBytes] applies a
// Client's own, possibly lower, Config.MaxSegmentSize.
func MaxUploadBytes(d Dialect) int64 {
	return min(MaxSegments*MaxSegmentBytes(d), maxTotalBytes)
}

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
		return 0, 0, kindf(ErrSegmentTooLarge, "a file of %d bytes needs segments of %d bytes to fit in %d, above the largest segment of %d bytes",
			total, segSize, MaxSegments, max)
	}
	n := total / segSize
	if total%segSize != 0 {
		n++
	}
	return segSize, int(n), nil
}
