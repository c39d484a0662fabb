// Package relay is mediagw's status relay: it relays X's processing state
// of uploaded media to callers (GetStatus, WatchStatus).
//
// One poller per media id (and credential) asks X for STATUS as X's
// check_after_secs says and fans every change out to all watchers; a watch
// starts from X's state (or the running poller's), never from the state
// the upload answered. Terminal states are remembered while the media id
// is valid; media X does not process (images, subtitles) is SUCCEEDED
// from the upload on. Who uploaded which media is kept with them: a
// caller sees only its own media.
//
// What the relay keeps sits in a [StatusStore]: in the process by default
// (a bounded LRU, [NewMemoryStatusStore]), or shared by replicas (Redis,
// service/redisstore), where a poll lease per media id makes one replica
// the poller and the others follow the changes it publishes. One
// conformance suite (relay/statustest) holds both stores to the same
// semantics.
package relay
