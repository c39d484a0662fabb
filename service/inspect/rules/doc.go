// Package rules holds X's media rules per category as data and checks an
// [inspect.Report] against them.
//
// The [Default] profile follows X's newest best-practices page (FACTS §2
// and §8); its comment lists where X's pages conflict and which value won.
// Limits that follow the X account's tier (long video, larger files) are
// changed per account with [Overrides], which decode from YAML with the
// names max_bytes, max_duration, min_duration, max_width, max_height,
// min_width, min_height, min_aspect_ratio, max_aspect_ratio,
// max_frame_rate, video_codecs, chroma_formats, max_bit_depth,
// audio_codecs, max_audio_channels, square_pixels, max_frames,
// max_pixel_frames and formats.
//
// [Profile.Check] (and [Check] for the default profile) returns a
// [Violation] per rule broken: a reason in the ErrorInfo style (VIDEO_TOO_LONG,
// FRAME_RATE_TOO_HIGH, ...), the inspected field, the limit and the
// actual value as strings ({"limit":"140s","actual":"150.2s"}) and one
// sentence a caller can act on. Called with final=false while bytes
// stream, it reports only what the bytes seen already decide, so an
// engine can refuse before INIT when the header (or a faststart moov)
// shows a violation and before FINALIZE otherwise.
package rules
