// Package engine is mediagw's upload engine: the one path every upload
// takes, whatever its transport. A transport hands [Engine.Run] the caller
// its authentication established and a [Source] (the start message, then
// the media bytes); the engine validates the start message against X's
// media rules, admits the upload (mediagw's concurrency limits and the
// caller's policy and quotas), reads the first bytes (their format must be
// the declared one), spools an upload of unknown size to disk, sends INIT
// through the [backend.Backend], hands the bytes to the session (which cuts
// them into X's segments) through a [Sink] that counts and hashes them,
// and finalizes once exactly total_bytes arrived and the SHA-256 matches.
//
// An upload with an idempotency key is recorded in the ledger as it goes
// (each segment X acknowledged, the hash state at its end), so that a
// broken stream, a restart or a replica's death interrupts it rather than
// losing it: a resume continues where X's acknowledgements end, with no
// new INIT, and a finished key answers again with no call to X. An upload
// without a key takes the same path with a record that keeps nothing.
//
// Errors come back as gRPC statuses (apierr is the one table); the
// transports add nothing but their framing.
package engine
