// Package xfake emulates X's media upload API strictly enough to be the
// ground truth of mediagw's tests: same status codes, same body shapes, same
// limits, plus knobs for latency, bandwidth, faults and processing time. An
// emulator more lenient than X would hide bugs, so when X's behaviour is
// known it is copied, and when it is not, the stricter choice is taken.
//
// [Server] is an [net/http.Handler]: mount it in-process (httptest, see
// package xfaketest) or run it standalone with cmd/xfake.
//
// # Endpoints
//
// v2 dedicated endpoints (current; FACTS §1C). Answers are wrapped in
// "data" and ids are strings:
//
//	POST /2/media/upload/initialize        JSON only {media_type, total_bytes, media_category,
//	                                       additional_owners, shared}; unknown members 400; 200
//	POST /2/media/upload/{id}/append       multipart (media, segment_index) or JSON (base64
//	                                       media, segment_index); 200 {"data":{"expires_at":<ms>}}
//	POST /2/media/upload/{id}/finalize     no body needed; 200
//	GET  /2/media/upload?command=STATUS&media_id=   (command optional); 200
//
// v2 command style (deprecated; FACTS §1B): POST /2/media/upload with
// command=INIT|APPEND|FINALIZE as urlencoded form, multipart fields or query
// parameters. INIT 202, APPEND 204 empty, FINALIZE 200. A JSON command is 400
// {"errors":[{"code":38,"message":"media parameter is missing."}]} (v2_09).
//
// v2 one-shot (FACTS §1C; MediaUploadRequestOneShot, OpenAPI 2.167): POST
// /2/media/upload without command, multipart (media, media_category) or JSON
// (base64 media); optional media_type, additional_owners, shared.
// media_category is tweet_image, dm_image or subtitles, media_type one of
// the image and subtitle types (no GIF, no video); without media_type the
// type is read from the bytes. 200 with FINALIZE's synchronous body
// (data{id, media_key, size, expires_after_secs, image}). A missing media or
// media_category is code 38, as for the rest of this endpoint.
//
// v1.1 (FACTS §1A): POST /1.1/media/upload.json with the same fields (and
// media_data, base64, on APPEND). INIT 202 {media_id, media_id_string,
// expires_after_secs[, media_key]} with x-mediaid, APPEND 204 empty with
// x-mediaid and x-segmentcount and x-totalbytes, both 0 as X sent them on
// every recorded segment (v1_02, v1_03), FINALIZE 201 with x-mediaid when
// synchronous (v1_04), 200 with processing_info and no x-mediaid when not
// (v1_06). STATUS is GET only; a POST STATUS is 400 code 38. v1.1 takes OAuth
// 1.0a only: a bearer token is 403 code 220.
//
// v1.1 simple upload (v1_07): the same POST without command, carrying media
// (multipart) or media_data (base64, multipart or urlencoded), optional
// media_category and additional_owners. The type is read from the bytes:
// images and GIFs only, anything else "media type unrecognized." (v1_08).
// 200 {media_id, media_id_string, size, expires_after_secs, image{image_type,
// w, h}}, media_key only with a media_category. Always synchronous: one
// request is the 5 MB path, for GIFs too.
//
// After the upload (FACTS §8; OpenAPI MetadataCreateRequest,
// SubtitlesCreateRequest, SubtitlesDeleteRequest; the v1.1 reference pages),
// both v2 dialects on the v2 paths:
//
//	POST   /2/media/metadata     {"id","metadata":{alt_text{text}, sensitive_media_warning{adult_content,
//	                             graphic_violence,other}, allow_download_status{allow_download},
//	                             audience_policy, geo_restrictions, content_expiration{timestamp_sec},
//	                             found_media_origin{id,provider}, …}}; 200 {"data":{"id","associated_metadata"}}
//	POST   /2/media/subtitles    {"id","media_category":"TweetVideo"|"AmplifyVideo",
//	                             "subtitles":{"id","language_code","display_name"}};
//	                             200 {"data":{"id","media_category","associated_subtitles":[…]}}
//	DELETE /2/media/subtitles    {"id","media_category","language_code"}; 200 {"data":{"deleted":true}}
//	GET    /2/media/{media_key}  ?media.fields=…; 200 {"data":{media_key,type,…}}, or 200
//	                             {"errors":[resource-not-found]} for unknown or another user's media
//
// and v1.1, JSON bodies, 200 with an empty body:
//
//	POST /1.1/media/metadata/create.json   {"media_id","alt_text":{"text"},
//	                                       "sensitive_media_warning":["adult_content","graphic_violence","other"]}
//	POST /1.1/media/subtitles/create.json  {"media_id","media_category","subtitle_info":{"subtitles":
//	                                       [{"media_id","language_code","display_name"}]}}
//	POST /1.1/media/subtitles/delete.json  {"media_id","media_category","subtitle_info":{"subtitles":
//	                                       [{"language_code"}]}}
//
// Rules: alt text at most 1000 characters (code points, not bytes);
// language_code ^[A-Z]{2}$; subtitles only on tweet_video media with
// TweetVideo or amplify_video with AmplifyVideo, and only from a finalized
// upload of category subtitles; audience_policy items "Any" only; geo
// restriction codes two letters; unknown members refused. Media belongs to
// the user that INITed it (the bearer token or oauth_token, a refreshed
// OAuth 2.0 token staying the user of its refresh chain): another user's
// media is 403 Forbidden (v2 Problem; v1.1 code 324) and not found by
// lookup. Metadata and subtitles need the media finalized and, when
// processed, succeeded: before that 400 "Media is not ready" (v2
// invalid-request problem, v1.1 code 324), after a failure "Media processing
// failed.". v1.1 takes alt text on images and GIFs only, as its reference
// page says. A v2 metadata body without "metadata" answers 500, as X did
// (node-twitter-api-v2#579). Each metadata call sets the members it carries
// and keeps the others; subtitles in a language already attached replace
// the earlier track. These wordings, codes and the merge are the
// emulator's choices where X documents none.
//
// OAuth 2.0 Authorization Code with PKCE, as X documents it:
//
//	GET  /i/oauth2/authorize    response_type=code, client_id, redirect_uri, scope, state,
//	                            code_challenge, code_challenge_method=S256 (or plain);
//	                            the test user approves at once: 302 to redirect_uri with
//	                            code and state (error=invalid_request when a parameter is
//	                            missing; a bad client_id or redirect_uri is a 400 page)
//	POST /2/oauth2/token        grant_type=authorization_code with code, redirect_uri,
//	                            code_verifier (checked against the challenge); or
//	                            grant_type=refresh_token with refresh_token
//
// The client authenticates by HTTP Basic, or by client_id in the form when it
// has no secret. Codes are single-use and live AuthCodeTTL (30s). The answer
// carries the granted scope; a refresh token only when the scope has
// offline.access. Refresh tokens are single-use: each refresh spends the old
// one and returns a new pair with the same scope. A spent or unknown token is
// 400 {"error":"invalid_request","error_description":"Value passed for the
// token was invalid."}; with RevokeFamilyOnReuse, a spent refresh token
// presented again also revokes every token of its family (the same
// authorization). Minted access tokens work until expires_in passes, then 401;
// one without media.write is 403 (v2_08) on the v2 upload endpoints.
// [Server.RevokeAuthorizations] revokes every issued token, as a user
// revoking the app's access in X's settings does.
//
// # Errors
//
// v2 answers RFC 7807 Problems (application/problem+json) for 401, 429 and
// 503, and 400s in X's hybrid shape (v2_07, v2_10):
//
//	{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}
//	{"errors":[{"message":"…"}],"title":"Invalid Request",
//	 "detail":"One or more parameters to your request was invalid.",
//	 "type":"https://api.twitter.com/2/problems/invalid-request"}
//
// A 500 fault is {"errors":["internal server error"]} (v2_12). v1.1 answers
// {"errors":[{"code":N,"message":"…"}]} (32 auth, 38 missing parameter, 88
// rate limit, 130/131 faults, 220 wrong auth type, 324 media id) or
// {"request":"/1.1/media/upload.json","error":"…"}.
//
// # Validation
//
//   - media_type and media_category must be in X's lists; total_bytes in
//     1..17179869184; segment_index in 0..999 ("SegmentIndex must be between
//     0 and 999.").
//   - media_category spellings: v1.1 takes the snake_case names, their
//     CamelCase forms and the joined lower-case forms (tweet_video,
//     TweetVideo, tweetvideo) as the same category; any other spelling is
//     "Invalid media_category.". Both v2 dialects take the snake_case names
//     only (see Real clients).
//   - APPEND media over MaxSegment: 413 with an empty body.
//   - APPEND or FINALIZE on unknown, expired or finalized media: 400
//     ("BadRequest: Not found", "BadRequest: Media already finalized"; v1.1
//     code 324).
//   - A re-sent segment replaces the earlier one; segments may arrive in
//     parallel and out of order. FINALIZE needs segments exactly 0..n-1
//     summing to total_bytes, else "Segments do not add up to provided total
//     file size.".
//   - Without media_category, a video over 15 MiB is "Large file can not be
//     finalized synchronously." and a GIF over 5 MiB "File size exceeds
//     5242880 bytes."; other images are capped at 5 MiB, GIFs with a category
//     at 15 MiB.
//   - STATUS on media that never had processing: v2 400 "BadRequest: Not
//     found"; v1.1 404 code 324.
//
// # Processing
//
// Video or GIF media INITed with a media_category is processed
// asynchronously: FINALIZE answers processing_info {pending,
// check_after_secs 1}; STATUS then reports pending for the first tenth of
// ProcessingTime, in_progress with a rising progress_percent, then succeeded.
// Media whose first bytes do not match its media_type (mp4/quicktime ftyp at
// offset 4, webm EBML, mp2t sync byte, GIF87a/89a, PNG, JPEG, WebP, BMP, TIFF,
// WEBVTT, glTF, zip) ends failed with error {1, InvalidMedia, "Unsupported
// video format"} ("file is invalid" for GIFs). Synchronous media that does not
// match fails FINALIZE with 400 "InvalidMedia". Image answers carry w and h
// for PNG and GIF, 0 otherwise.
//
// Sessions expire SessionTTL after INIT, media MediaTTL after FINALIZE;
// afterwards every call on them is answered as for unknown media. Expiry is
// applied on every lookup and by a janitor.
//
// # Rate limits
//
// Fixed windows per token (bearer token, or oauth_token) and endpoint key:
// init, append, finalize, status (both v2 dialects), upload (v2 one-shot),
// metadata, subtitles, lookup, v1.1-init, v1.1-append, v1.1-finalize,
// v1.1-status, v1.1-upload (simple upload), v1.1-metadata, v1.1-subtitles,
// with X's limits by default
// ([DefaultRateLimits]). Every answer of a limited endpoint carries
// x-rate-limit-limit, -remaining and -reset (epoch seconds). An exhausted
// window answers 429 (v2 Problem; v1.1 code 88). Requests rejected by
// authentication do not count.
//
// # Faults
//
// With probability FaultRate an upload or status call (never inspection or
// token calls) gets one of FaultKinds: 503, 500, a TCP reset, or a stall of
// StallFor followed by a dropped connection. Each fault hits, with equal
// odds, before the request is applied or after (the work is done and the
// answer lost), so clients must cope with both: a re-sent segment replaces
// the first, a FINALIZE retry sees "already finalized". Faults and ids are
// deterministic for a given Seed and request order.
//
// Latency is added to every upload, status and token request. Bandwidth caps
// every connection accepted through [Server.Listener].
//
// # Inspection
//
// Emulator-only, unauthenticated, never delayed or faulted:
//
//	GET /_xfake/media/{id}   JSON [MediaInfo]: sha256 of the segments in index order
//	                         (computed at FINALIZE), size, segments, state,
//	                         max_concurrent_appends, append_requests, metadata,
//	                         subtitles, metadata_requests, subtitles_create_requests,
//	                         subtitles_delete_requests (applied calls), ...; 404 when unknown
//	GET /_xfake/stats        JSON [Stats]
//
// # Memory
//
// Segment bytes are streamed to files in SpillDir as they arrive; base64
// media is decoded while streaming. A 2 GiB upload needs disk, not 2 GiB of
// memory. The SHA-256 of the media is computed as contiguous segments
// arrive, so FINALIZE only hashes the rest and answers as quickly as X does;
// a re-sent segment that was already hashed makes FINALIZE hash it all
// again. Segment files are removed once FINALIZE has hashed them.
//
// # Real clients
//
// make conformance (upstream/xfake/conformance) uploads a video, an image
// and, on v1.1, a GIF and an SRT track through cmd/xfake with clients
// written elsewhere, then sets alt text on the image (tweepy
// create_media_metadata; twitter-api-v2 createMediaMetadata on v1.1 and
// v2) and attaches and removes the track on the video (twitter-api-v2
// createMediaSubtitles and deleteMediaSubtitles, v1.1 only in that client),
// each checked against what the emulator holds:
// tweepy 4.12.1 (Debian) on v1.1, twitter-api-v2 1.29.1 (npm) on v1.1 and
// the v2 dedicated endpoints, twitter-api-v2 1.22.0 on the v2 command
// style; OAuth 1.0a signatures are verified on v1.1, a bearer is used on v2.
// Every client waits in its own STATUS loop and the emulator's sha256 must
// equal the file's. Where a client and the emulator disagreed, the side
// that matches X was decided from FACTS.md and the recorded exchanges:
//
//   - twitter-api-v2's v1 upload sends media_category TweetVideo, TweetImage,
//     TweetGif (DmVideo, ..., Subtitles for other targets). The client is
//     right for v1.1: X answered TweetGif with a 16_ media key and
//     processing_info (node-twitter-api-v2#519), and its own large-video
//     sample sent tweetvideo ("it appears they both work",
//     large-video-upload-python#1). The emulator used to refuse them. Nothing
//     shows X's v2 taking these spellings: its OpenAPI enum is snake_case
//     and twitter-api-v2's v2 code sends snake_case, so v2 stays strict.
//   - tweepy's media_upload of an image is the simple upload. The client is
//     right: X answers it 200 (v1_07); the emulator answered code 38
//     "media parameter is missing." with media present.
//   - X sends content-length: 0 on its v1.1 204s (v1_02). Go's net/http
//     never sends Content-Length on a 204 (RFC 9110 forbids it), so the
//     emulator's 204s have none; no client here reads it.
//   - twitter-api-v2's v1 uploadMedia sends an SRT track as media_type
//     text/plain (its EUploadMimeType.Srt), the only way it sends
//     media_category Subtitles, and its createMediaSubtitles needs such a
//     track. X's v2 list has text/srt and text/vtt only; nothing shows
//     X's v1.1 refusing the client's form, so v1.1 INIT takes text/plain
//     with category subtitles, and nowhere else.
//   - The emulator sends check_after_secs with every pending and
//     in_progress state, as X did (v1_06, v2_03). twitter-api-v2's v2 loop
//     relies on it: without it, it returns as if processing were done.
//
// The clients hard-code X's hosts; the scripts point them at the emulator
// without patching them. tweepy gets upload_host=127.0.0.1:PORT and a
// requests session that turns https:// into http:// before the request is
// signed. twitter-api-v2 reads its hosts from the exported constants of
// dist/cjs/globals at every request: they keep X's host names with the
// emulator's scheme and port, and an http.Agent (the httpAgent setting)
// resolves every name to 127.0.0.1. The names must stay: twitter-api-v2
// picks a v1.1 body encoding from the host, multipart for upload.x.com only;
// any other host makes it send media/upload.json urlencoded, with the binary
// segment mangled into the signed form, which X never receives (the
// emulator answers it 401 code 32).
//
// # Command
//
// cmd/xfake runs the emulator standalone; its flags map onto [Options]:
// --addr, --token, --latency, --bandwidth, --fault-rate, --fault-kinds,
// --stall-for, --processing-time, --max-segment, --seed, --rate-limit,
// --consumer-key, --consumer-secret, --access-token, --access-token-secret,
// --client-id, --client-secret, --refresh-token, --access-token-ttl,
// --redirect-uri, --revoke-family-on-reuse, --session-ttl, --media-ttl,
// --spill-dir, --log-format, --log-level. Sizes use [ParseSize].
package xfake
