package upstream

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// linuxTCP reads tcpi_bytes_acked and tcpi_bytes_received (Linux 4.1 and
// later) with getsockopt(TCP_INFO).
type linuxTCP struct{ rc syscall.RawConn }

func tcpCountersOf(c net.Conn) tcpCounters {
	tc := netConnOf(c)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return linuxTCP{rc}
}

func (l linuxTCP) counters() (acked, received uint64, ok bool) {
	var info *unix.TCPInfo
	var err error
	if cerr := l.rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, 0, false
	}
	return info.Bytes_acked, info.Bytes_received, true
}
