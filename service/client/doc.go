// Package client is the Go client of mediagw for the backend services
// that upload media to X through it: resumable uploads, typed errors,
// progress and processing status, over gRPC (or REST with WithREST).
//
//	c, err := client.New("mediagw.internal:9090", client.WithTokenSource(jwts))
//	res, err := c.Upload(ctx, client.File("clip.mp4"), client.UploadOptions{})
//	st, err := c.WaitUsable(ctx, res.MediaID)
//
// # Resumable uploads
//
// An upload with an idempotency key is recorded in mediagw's ledger as it
// goes; when the stream breaks (Unavailable, a reset connection, a
// replica or mediagw itself dying, a stall longer than WithStallTimeout),
// Upload asks where the upload stands and resumes from committed_bytes,
// the prefix X acknowledged, so X sees one INIT and every byte once. A
// key whose upload completed is answered from the ledger without sending
// a byte. Retries wait a capped, jittered exponential backoff (never less
// than mediagw's RetryInfo), at most RetryPolicy.MaxRetries in a row
// without progress and within RetryPolicy.MaxElapsed; then Upload gives
// up with the last error (Reason GAVE_UP).
//
// What can be resumed depends on the Source: a File or a ReaderAt from
// any offset; a plain Reader only before its first byte was read (see
// Reader).
//
// # Idempotency keys
//
// UploadOptions.IdempotencyKey names the upload. When it is empty, Upload
// derives one for a File or ReaderAt (see DeriveKey) from what tells the
// upload apart on the caller's side: the SHA-256 of the content, its
// size, the media type, the category, the account and, when the context
// carries an X user token (ContextWithXToken), a SHA-256 of that token
// (never the token), so two X users uploading the same file never share a
// key. mediagw scopes keys per caller too. Uploading the same file again
// with the same options therefore resumes or replays it. A plain Reader
// gets no derived key: without a content hash known in advance, two
// different streams of one size would collide.
//
// # Errors
//
// Every error of a call is an *Error: the gRPC code (REST problems are
// mapped back), mediagw's ErrorInfo reason (domain "mediagw"),
// RetryAfter from RetryInfo, QuotaFailure violations, and the UploadState
// of an interrupted upload. IsRetryable says whether a retry may help.
// Permanent failures end at once, without retries: a refused TLS
// handshake (Reason TLS_HANDSHAKE: no client certificate, an unknown
// authority, a wrong server name), Unauthenticated, PermissionDenied,
// InvalidArgument, NotFound, FailedPrecondition without an UploadState,
// ResourceExhausted without RetryInfo (a size or whole-window quota).
//
// # Status
//
// Watch follows a media's processing over the status stream and
// reconnects when the stream is lost; WaitUsable waits for the end and
// turns X's processing failure into a *ProcessingError.
//
// # Telemetry
//
// The gRPC transport propagates the caller's trace context with otelgrpc
// (global providers unless WithOTel says otherwise); the REST transport
// injects the global propagator's headers. Tokens and media bytes are
// never logged or put in errors.
package client
