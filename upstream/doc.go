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
// segment_index runs from 0 to 999, so a file has at most 1000 segments,
// and the largest segment decides the largest file:
//
//   - v1.1 documents that an APPEND's media must be "<= 5 MB". Read as
//     5,000,000 bytes (the smaller of decimal and binary megabytes, so the
//     limit holds whichever X meant), v1.1 takes segments of up to
//     5,000,000 bytes and files of up to 5,000,000,000 bytes.
//   - v2 (dedicated and command style) documents no limit. A 5 MiB APPEND
//     has met 413 with an empty body, an edge limit, and X's own tools
//     (xurl, the v2 samples) send 4 MiB; nothing between 4 MiB and 5 MiB is
//     known to pass. So v2 takes segments of up to 4 MiB (4,194,304 bytes)
//     and files of up to 4,194,304,000 bytes (4000 MiB), far below the 16
//     GiB that total_bytes allows: 1000 segments of 4–5 MiB cannot reach it,
//     and X documents no way that does.
//
// [MaxSegmentBytes] and [MaxUploadBytes] give these limits per dialect,
// [Client.MaxUploadBytes] those of a Client (whose Config.MaxSegmentSize may
// be lower, never higher). [PlanSegments] uses the preferred size (4 MiB by
// default), grows it to ceil(total/1000) for larger files, and Begin
// refuses a file above the limit with [ErrSegmentTooLarge] before anything
// is sent.
//
// X's limit can also be found at run time. An APPEND answered 413 does not
// fail the upload: the refused segment's bytes are set aside on disk (its
// buffer goes back at once), and once the APPENDs in flight have ended the
// refused segments and every byte after them are cut again at half the
// size of the smallest refused segment, down to [MinReplanSegment] (1
// MiB) and within 1000 segments. The segments before the first refused one
// keep their indexes; the [Plan] gains a run from there. [WithReplanned]
// reports each new plan (a durable record of the upload must store it to
// resume; [ResumePoint.Plan] takes it back), the Client plans its later
// uploads at the size X took, and the log and the
// mediagw.upstream.segments.replans counter say so. Only bytes the Upload
// still holds can be cut again, so the last segment's buffer is kept
// after X took it until the APPENDs before it ended; an upload where X took
// another segment behind a refused one, or that cannot be cut smaller,
// fails with X's 413 and [APIError.NotCut] saying why.
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
// (Parallelism+1) segment buffers.
//
// An APPEND body is three parts, a small multipart head, the segment
// buffer itself and a tail, with a precomputed Content-Length, and the
// segment is never copied again in user space. The Client's own transport
// (HTTP/1.1, a connection per APPEND in flight) recognises the body behind
// net/http's LimitReader and hands it to the socket: one write for the
// request line, the headers and the first few KiB, then one writev for the
// rest of the segment and the tail. Measured on loopback (BenchmarkTransport,
// 4 MiB segments): 0.9 write system calls per MiB instead of 33 through
// net/http's copying path (a 32 KiB buffer), half the bytes allocated, and
// about a fifth less CPU per byte (client and server of the benchmark
// together); over TLS the encryption is the one copy,
// and records of 16 KiB set the system calls (65 per MiB either way). Other
// transports read the body with Read, which copies once into their buffer.
// The segment buffer returns to the pool only once nothing can read it any
// more: X may answer before net/http has sent the whole body, and a write
// still running then is ended by closing its connection.
// X is observed to key segments by segment_index, a re-sent segment
// replacing the earlier one, which is what makes parallel and retried
// APPENDs safe; FINALIZE checks that the segments add up to total_bytes.
// [Upload.Finish] waits for the APPENDs and sends FINALIZE.
//
// # Retries and stalls
//
// Every call (INIT, each APPEND, FINALIZE, STATUS) is retried on timeouts,
// stalls, connection errors, 408 and 5xx, at most Config.MaxAttempts times,
// with exponential backoff and full jitter (a uniform delay up to the
// exponential step). Other 4xx answers are final. The metadata and
// subtitles calls are retried less: see "Calls after the upload".
//
// A stall is detected by progress, not by a deadline: an attempt is
// abandoned when nothing has moved for Config.StallTimeout (3 s by
// default). On Linux, moving means that X's side acknowledged more request
// bytes or sent response bytes, read from the connection's TCP_INFO
// counters, so that a segment sitting in the socket's send buffer on a slow
// link still counts as moving; everywhere, every step net/http reports and
// every read of the body or the answer counts too (where TCP_INFO is not
// read, that is all there is: a segment must then enter the socket, and
// leave its buffer, within StallTimeout). So on Linux a 4 MiB APPEND over a
// slow but steady link is never cut, however long it takes, while a dead
// connection costs StallTimeout (checked every eighth of it) instead of a
// size-scaled deadline of up to 47 s. With 10 % of requests failing (503,
// 500, reset or a 30 s stall) and 20 ms of latency, 8 MiB uploads took
// 3.9–4.2 s at the 99th percentile instead of 35 s (BenchmarkMeasureFaultTail).
// Config.AttemptTimeout (10 minutes) remains as a backstop against a peer
// that trickles a byte every few seconds, which would otherwise hold a
// segment buffer for ever.
//
// A lost FINALIZE answer makes the retry see "already finalized" (v2 400,
// v1.1 code 324); that counts as success and the processing state is read
// with STATUS. An OAuth 2.0 access token rejected with 401 is refreshed
// once.
//
// # Stored OAuth 2.0 accounts
//
// X's refresh tokens are single-use: a refresh spends the old one. [OAuth2]
// keeps the rotated pair in memory only; [StoredOAuth2] keeps it in a
// [TokenStore] shared by restarts and replicas. The store is read first, the
// configured token only for an account it has never seen. A refresh takes
// the account's lease, re-reads the store, refreshes only if the stored
// token is still the one that needed it, and stores the new pair before it
// is used; other processes wait on the lease and use the stored result. A
// refresh X refuses makes the store be read again (another process may have
// rotated) before the account is declared reauth_required; from then on
// uploads fail before INIT with a [*ReauthError] naming the account and
// `mediagwctl accounts login`, until a new pair appears in the store.
// Transient failures (X or the store unreachable, 5xx) are retried with
// backoff (refresh_failing). A token without media.write is refused when
// obtained. [Account.Health] reports the state without secrets.
//
// # Rate limits
//
// X sends x-rate-limit-limit, -remaining and -reset (epoch seconds) per user
// and endpoint. The Client keeps one budget per credential identity (a hash,
// never the secret) and endpoint key ("init", "append", "finalize",
// "status", "metadata", "subtitles" for both subtitles calls, "lookup", or
// "v1.1-…"), shared by all uploads. While a budget is at zero,
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
// # Calls after the upload
//
// [Client.SetMetadata] sets alt text and the other metadata X documents
// ([Metadata]: sensitive_media_warning, allow_download_status,
// audience_policy, geo_restrictions, content_expiration,
// found_media_origin) with POST /2/media/metadata {"id","metadata":{…}}
// on both v2 dialects and POST /1.1/media/metadata/create.json
// {"media_id","alt_text":{"text"},"sensitive_media_warning":[names]} on
// v1.1, which takes nothing else. [Client.AttachSubtitles] and
// [Client.DetachSubtitles] use POST and DELETE /2/media/subtitles (the
// DELETE carries a JSON body) and media/subtitles/{create,delete}.json,
// with X's media_category TweetVideo or AmplifyVideo derived from the
// video's upload category. [Client.LookupMedia] is GET
// /2/media/{media_key} with media.fields; v1.1 has no lookup and the call
// fails with [ErrUnsupported] without sending anything. The bodies are
// JSON, which OAuth 1.0a leaves out of the signature (only urlencoded
// bodies are signed). Everything X documents is checked before a request
// leaves, with nothing sent on failure: alt text of at most 1,000
// characters (code points, not bytes) of valid UTF-8, language codes of
// two upper-case letters, subtitles only for tweet_video and amplify_video,
// audience items "Any", two-letter country codes, numeric ids;
// [Metadata.Validate], [Client.CheckMetadata] and [CheckSubtitles] do the
// same for a caller that wants to refuse bad input before INIT. X refuses
// metadata and subtitles on a video whose processing has not succeeded;
// its answer is an ordinary [*APIError].
//
// Retries. X documents none of the metadata and subtitles calls as
// idempotent: its pages say what the calls create and nothing of what a
// repeated call does (the v1.1 and v2 references, X's OpenAPI), so this
// package does not assume it. They are made once: an attempt is retried
// only when it cannot have been applied, namely when the connection was
// never made (refused, no route, name not resolved), when the request was
// not written whole, when X answered 429 (rate-limited requests are
// refused before they are processed, as for every other call) or 401 with
// an OAuth 2.0 token that is then refreshed. Every other failure ends the
// call: a 408 or 5xx answer, 503 included, because X does not say that
// such an answer means the call was not processed and an edge in front of
// X (or the emulator's faults) can answer it after the work is done; and
// a reset, timeout or stall after the request was written. Their
// [*APIError] or [*TransportError] then has MaybeApplied set (and
// OutcomeUnknown() bool, for callers that cannot import this package):
// whether X applied the call is unknown, and the caller decides, for
// example from its own record of what it sent and X's lookup. A call
// ended by its context may likewise have been applied. The lookup is a
// GET and is retried like STATUS.
//
// # Errors
//
// An error's text is one sentence for the caller: what X did or did not do
// and why, for example "X did not answer APPEND of segment 3 after 5
// attempts (connection reset)", "X answered INIT with HTTP 400: …" or
// "received 9216 of the declared 10240 bytes". It never holds X's URL, a
// credential, or more than 128 characters of anything from outside (X's
// messages, the caller's values). The detail stays for operators:
// [*TransportError] unwraps to the last attempt's error, and it,
// [*APIError] and [*RateLimitError] implement slog.LogValuer (call, segment,
// media id, attempts, X's fields, the transport's own text), so a logger
// given the error records all of it.
//
// [*APIError], [*RateLimitError], [*TransportError],
// [*TokenRefreshError], [*ReauthError] (412: the account must be authorized
// again; it also has ReauthRequired() bool) and [*StoreError] (503) have
// StatusCode() int, and the first two
// RetryDelay() time.Duration, so callers that cannot import this package
// can classify them with small interfaces of their own. Sentinels caused by
// the caller's input ([ErrTooManyBytes], [ErrShortUpload],
// [ErrSegmentTooLarge], [ErrInvalidParams], [ErrUnsupported]) and
// [*ProcessingError] for bad media have InvalidInput() bool, and
// ErrUnsupported also Unsupported() bool; test for the sentinels with
// [errors.Is].
// Cancelling the context passed to Begin stops every in-flight call of the
// upload promptly.
//
// # Tracing
//
// Each attempt of an X call is a client span, a child of the span in the
// context the call was made with, named after the call: "X INIT", "X
// APPEND", "X FINALIZE", "X STATUS", "X METADATA", "X SUBTITLES CREATE",
// "X SUBTITLES DELETE", "X LOOKUP". X is sent nothing of that context unless
// Config.PropagateTraceContext is set, and then only the W3C traceparent of
// the attempt's span: never tracestate or baggage, which may carry the
// caller's own data.
package upstream
