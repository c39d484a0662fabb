package upstream

// BuffersHeld reports the segment buffers currently taken from c's pools
// and the most ever held at once.
func BuffersHeld(c *Client) (now, peak int64) { return c.held.Load(), c.peakHeld.Load() }

// UploadAll is uploadAll for the external tests.
var UploadAll = uploadAll

// CloseIdle is closeIdle for the external tests.
var CloseIdle = closeIdle

// Eventually is eventually for the external tests.
var Eventually = eventually
