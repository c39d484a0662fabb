// Package service implements mediagw.v1.MediaUploadService: the gRPC
// Upload client stream, GetStatus and WatchStatus, and the REST gateway in
// front of them.
//
// # Upload path
//
// An upload is validated before X sees it: the start message (media type
// in X's list, category compatible with the type, total_bytes within the
// category's limit) and the first bytes of the media (their format must
// match the declared type). Then the [Backend] sends INIT and takes the
// chunks as they arrive; the backend cuts them into X segments. Bytes past
// total_bytes fail the call at once and never reach X; a stream that ends
// short fails with "received N of M bytes".
//
// REST uploads (POST /v1/media:upload, a raw body or multipart/form-data)
// are relayed by the [Gateway] into the same Upload RPC over a gRPC
// connection, in bounded chunks.
//
// # Status relay
//
// One poller per media id (and credential) asks X for STATUS as X's
// check_after_secs says and fans every change out to all watchers; a watch
// starts from X's state (or the running poller's), never from the state
// the upload answered. Terminal states are remembered while the media id
// is valid; media X does not process (images, subtitles) is SUCCEEDED
// from the upload on. What the relay keeps sits in a [StatusStore]: in the
// process by default (a bounded LRU), or shared by replicas (Redis, in
// service/redisstore), where a poll lease per media id makes one replica
// the poller and the others follow the changes it publishes.
//
// # Callers
//
// An [Authenticator] establishes who calls, the same way for both
// transports: gRPC interceptors and an HTTP middleware in front of the
// gateway check the client certificate (mTLS) and the bearer token (a
// [TokenVerifier]) and put the caller's [Identity] into the call's context,
// the only place the service reads it from. A [Policy] (see
// [Server.SetPolicy]) says which X accounts each caller may use, whether it
// may pass its own X token, and its quotas, checked once per upload before
// INIT. Media and idempotency keys are the uploading caller's own: another
// caller gets NotFound.
//
// # Errors
//
// Every RPC returns through one conversion to a gRPC status: refused input
// is InvalidArgument, X's 401 Unauthenticated, 403 PermissionDenied, rate
// limits ResourceExhausted with RetryInfo, 5xx after retries Unavailable.
// The gateway writes the matching HTTP status with an RFC 7807 problem
// body (and Retry-After on 429).
//
// The package depends only on the generated API and on the interfaces it
// declares ([Backend], [Session]); cmd/mediagw connects the upstream
// adapter to them.
package service
