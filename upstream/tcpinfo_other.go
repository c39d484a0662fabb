//go:build !linux

package upstream

import "net"

// tcpCountersOf returns nil where TCP_INFO's byte counters are not read:
// the watchdog then sees only what the application writes and reads.
func tcpCountersOf(net.Conn) tcpCounters { return nil }
