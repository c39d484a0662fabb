package policy

import "time"

// usage is one caller's use of its quotas: uploads in flight, and the
// bytes charged per minute over the last day, oldest first. A rolling
// window of W minutes at minute m holds the charges of minutes m-W+1..m.
type usage struct {
	inFlight int
	charges  []charge
}

type charge struct {
	minute int64 // Unix minute
	bytes  int64
}

// dayMinutes is the longest window kept.
const dayMinutes = 24 * 60

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// prune drops charges older than the longest window.
func (u *usage) prune(now time.Time) {
	first := minuteOf(now) - dayMinutes + 1
	i := 0
	for i < len(u.charges) && u.charges[i].minute < first {
		i++
	}
	u.charges = u.charges[i:]
}

// used is what the window of the given minutes ending now holds.
func (u *usage) used(now time.Time, minutes int64) int64 {
	first := minuteOf(now) - minutes + 1
	var n int64
	for _, c := range u.charges {
		if c.minute >= first {
			n += c.bytes
		}
	}
	return n
}

// wait is how long until need more bytes fit into the window: until
// enough of the oldest charges in it have left. need must not exceed
// limit.
func (u *usage) wait(now time.Time, minutes, limit, need int64) time.Duration {
	first := minuteOf(now) - minutes + 1
	used := u.used(now, minutes)
	for _, c := range u.charges {
		if c.minute < first {
			continue
		}
		used -= c.bytes
		if used+need <= limit {
			// The charge leaves the window once minute c.minute+minutes begins.
			leaves := time.Unix((c.minute+minutes)*60, 0)
			return max(leaves.Sub(now), time.Second)
		}
	}
	return max(time.Duration(minutes)*time.Minute, time.Second)
}

func (u *usage) charge(minute, n int64) {
	if k := len(u.charges); k > 0 && u.charges[k-1].minute == minute {
		u.charges[k-1].bytes += n
		return
	}
	u.charges = append(u.charges, charge{minute: minute, bytes: n})
}

// refund gives n bytes back to the charge of minute, if still kept.
func (u *usage) refund(minute, n int64) {
	if n <= 0 {
		return
	}
	for i := range u.charges {
		if u.charges[i].minute == minute {
			u.charges[i].bytes -= min(n, u.charges[i].bytes)
			return
		}
	}
}
