package upstream

// BuffersHeld reports the segment buffers currently taken from c's pools
// and the most ever held at once.
func BuffersHeld(c *Client) (now, peak int64) { return c.held.Load(), c.peakHeld.Load() }
