package upstream

import "fmt"

// A Plan is how an upload's bytes are cut into segments: runs of segments
// of one size each, the first run from index 0. An upload starts with one
// run ([PlanSegments]); each re-plan after X refused a segment as too
// large (see "Segments" in the package documentation) ends the runs at
// the first refused segment and adds a run of smaller segments from
// there. The last segment may be shorter than its run's size.
type Plan []Run

// Run is a run of segments: from index From on (up to the next run's
// From), each segment is Size bytes.
type Run struct {
	From int
	Size int64
}

// uniformPlan is the plan of one run of size bytes.
func uniformPlan(size int64) Plan { return Plan{{From: 0, Size: size}} }

// at returns the run holding segment i and the offset of that run's first
// segment.
func (p Plan) at(i int) (Run, int64) {
	var off int64
	r := p[0]
	for k := 1; k < len(p) && p[k].From <= i; k++ {
		off += int64(p[k].From-r.From) * r.Size
		r = p[k]
	}
	return r, off
}

// Offset returns where segment i starts.
func (p Plan) Offset(i int) int64 {
	r, off := p.at(i)
	return off + int64(i-r.From)*r.Size
}

// Len returns the length of segment i of a file of total bytes.
func (p Plan) Len(i int, total int64) int64 {
	r, _ := p.at(i)
	return max(0, min(r.Size, total-p.Offset(i)))
}

// Count returns how many segments a file of total bytes needs.
func (p Plan) Count(total int64) int {
	last := p[len(p)-1]
	_, off := p.at(last.From)
	if total <= off {
		return last.From
	}
	rest := total - off
	return last.From + int((rest+last.Size-1)/last.Size)
}

// Index returns the segment holding byte off (the segment starting at
// off when off is a boundary).
func (p Plan) Index(off int64) int {
	i := 0
	for k := range p {
		r, start := p[k], p.Offset(p[k].From)
		if off < start {
			break
		}
		i = r.From + int((off-start)/r.Size)
	}
	return i
}

// check reports whether p is a usable plan for a file of total bytes:
// runs start at 0, go up in From with positive sizes, and the file fits
// in 1 to [MaxSegments] segments, each run holding bytes.
func (p Plan) check(total int64) error {
	if len(p) == 0 || p[0].From != 0 {
		return fmt.Errorf("the plan has no run from segment 0")
	}
	for k, r := range p {
		if r.Size < 1 || k > 0 && r.From <= p[k-1].From {
			return fmt.Errorf("run %d of the plan (from %d, %d bytes) is out of order or empty", k, r.From, r.Size)
		}
	}
	if n := p.Count(total); n < 1 || n > MaxSegments || n <= p[len(p)-1].From {
		return fmt.Errorf("the plan cuts %d bytes into %d segments", total, n)
	}
	return nil
}

// clone returns a copy of p that shares nothing with it.
func (p Plan) clone() Plan { return append(Plan(nil), p...) }
