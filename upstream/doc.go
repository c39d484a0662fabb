// Package upstream streams media into X's (Twitter's) chunked upload API:
// INIT, then APPEND of numbered segments, then FINALIZE, and STATUS while X
// processes video and GIFs. It imports only the standard library
// and HTTP, OAuth, rate-limit and backoff libraries; it knows nothing of
// gRPC or of the service in front of it.
//
// # Protocol as this package sees it
//
// X offers three dialects of the same four commands ([Dialect]):
//
//   - v2 dedicated endpoints (default): POST /2/media/upload/initialize with
//     a JSON body {media_type, total_bytes, media_category,
//     additional_owners, shared}; POST /2/media/upload/{id}/append with a
//     multipart body (segment_index field, media file part); POST
//     /2/media/upload/{id}/finalize with no body; GET
//     /2/media/upload?command=STATUS&media_id={id}.
//   - v2 command style (deprecated by X in 2025): POST /2/media/upload with
//     command=INIT|FINALIZE as a urlencoded form and command=APPEND as
//     multipart fields; STATUS is the same GET.
//   - v1.1: the command style on POST /1.1/media/upload.json, STATUS as a
//     GET (X answers a POSTed STATUS with error 38). v1.1 takes OAuth 1.0a
//     only.
//
// Answers vary more than the documentation admits, and the parser accepts
// all of them: 200, 201, 202 or 204; an empty or JSON body; fields at the
// top level (v1.1) or inside "data" (v2); ids as JSON strings or numbers
// (kept as text, never float64: ids exceed 2^53); expires_at in seconds or
// milliseconds. Errors come as {"errors":[{code,message}]},
// {"request","error"}, RFC 7807 Problem bodies, hybrids of the two,
// "errors" as plain strings, or non-JSON pages from a proxy; each becomes an
// [*APIError] whose text is sanitized and scrubbed of credentials.
//
// # Segments
//
// segment_index runs from 0 to 999, so a file has at most 1000 segments.
// v1.1 documents 5 MB per segment; v2 documents nothing, and 5 MiB APPENDs
// have met 413 with an empty body. [PlanSegments] therefore uses the
// preferred size (4 MiB by default), grows it to ceil(total/1000) for large
// files, and refuses files that would need segments above MaxSegmentSize
// before anything is sent.
//
// # Pipeline
//
// [Client.Begin] sends INIT and returns an [Upload]. Bytes written to it
// are copied (or, with ReadFrom, read directly) into pooled segment
// buffers; the APPEND of a segment starts the moment it is full, so the
// first APPEND leaves long before the caller has sent the whole file. Up to
// Config.Parallelism APPENDs of one upload run at once, and
// Config.MaxInFlight bounds them across all uploads of the Client through a
// FIFO semaphore, so uploads are served in arrival order. While the limit
// is reached, Write and ReadFrom block: the caller's stream is paused
// rather than buffered, and an upload never holds more than
// (Parallelism+1) segment buffers. Multipart bodies are an io.MultiReader
// over a small header, the segment buffer itself and a trailer, with a
// precomputed Content-Length: the segment is never copied again.
// X is observed to key segments by segment_index, a re-sent segment
// replacing the earlier one, which is what makes parallel and retried
// APPENDs safe; FINALIZE checks that the segments add up to total_bytes.
// [Upload.Finish] waits for the APPENDs and sends FINALIZE.
//
// # Retries
//
// Every call (INIT, each APPEND, FINALIZE, STATUS) is retried on timeouts,
// connection errors, 408 and 5xx, at most Config.MaxAttempts times, with
// exponential backoff and full jitter (a uniform delay up to the
// exponential step). Other 4xx answers are final. Each attempt has its own
// timeout, AttemptTimeout plus the body size divided by MinThroughput, so a
// stalled connection is abandoned without limiting large segments. A lost
// FINALIZE answer makes the retry see "already finalized" (v2 400, v1.1
// code 324); that counts as success and the processing state is read with
// STATUS. An OAuth 2.0 access token rejected with 401 is refreshed once.
//
// # Rate limits
//
// X sends x-rate-limit-limit, -remaining and -reset (epoch seconds) per user
// and endpoint. The Client keeps one budget per credential identity (a hash,
// never the secret) and endpoint key ("init", "append", "finalize",
// "status", or "v1.1-…"), shared by all uploads. While a budget is at zero,
// new requests wait for the reset; on 429 the budget is emptied until the
// reset (or Retry-After). A wait longer than Config.RateLimitMaxWait fails
// the call with a [*RateLimitError] carrying the reset time.
//
// # Processing
//
// FINALIZE without processing_info means the media is ready, and no STATUS
// is sent. Otherwise (video and GIF uploaded with a media_category) X
// processes the media asynchronously, and [Client.Status] sends one STATUS
// (a GET, as X requires) and returns what X answered: the state, verbatim
// even when it is none of the four known ones, check_after_secs,
// progress_percent and processing_info.error. Polling belongs to the
// caller, and so do the decisions about the answer: how long to wait
// between calls, when to give up, and that a processing_info.error ends
// processing even while the state still says in_progress (X has been seen
// reporting an error at 99 % without ever moving to failed).
//
// # Errors
//
// Errors are wrapped with %w. [*APIError], [*RateLimitError],
// [*TransportError] and [*TokenRefreshError] have StatusCode() int, and the
// first two RetryDelay() time.Duration, so callers that cannot import this
// package can classify them with small interfaces of their own. Sentinels
// caused by the caller's input ([ErrTooManyBytes], [ErrShortUpload],
// [ErrSegmentTooLarge], [ErrInvalidParams]) and [*ProcessingError] for bad
// media have InvalidInput() bool. Cancelling the context passed to Begin
// stops every in-flight call of the upload promptly.
package upstream
