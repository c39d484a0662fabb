// Package mediaops is what mediagw does on media once it is uploaded:
// X's media metadata (alt text, sensitive-media warnings...), subtitles
// attachments and the media lookup, for the caller's own media.
//
// Metadata and subtitles named at upload (UploadStart.metadata and
// subtitles) are applied exactly once, when the media is usable: at
// FINALIZE for media X does not process, once processing SUCCEEDED
// otherwise. They need an idempotency key: their state lives in the
// upload's ledger entry (ledger.Actions), and every change of it is
// written under the entry's lease, so one holder at a time works on them
// (on a shared Redis ledger, one replica). Before a call goes to X its
// action is recorded SENDING; a holder that finds SENDING (the previous one
// died, or X's answer left the outcome open) asks X's media lookup whether
// the alt text is there before sending again, and fails the action rather
// than risk a second call when no lookup can tell (v1.1, metadata without
// alt text, subtitles).
//
// Processed media is watched through the status relay (its poll runs
// whether or not a caller watches). Uploads whose actions are still open
// after a restart or a replica's death are found by scanning the ledger's
// index of pending actions (ledger.PendingScanner) every Config.ScanEvery.
package mediaops
