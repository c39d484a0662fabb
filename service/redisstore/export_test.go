package redisstore

// Halt stops the renewal of every lease s holds now, as in a process that
// paused or died; the returned func lets them renew again.
func Halt(s *Store) func() {
	s.mu.Lock()
	var held []*lease
	for _, l := range s.leases {
		l.halted.Store(true)
		held = append(held, l)
	}
	s.mu.Unlock()
	return func() {
		for _, l := range held {
			l.halted.Store(false)
		}
	}
}
