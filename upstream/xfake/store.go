package xfake

import (
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type mediaState int

const (
	stateUploading mediaState = iota
	stateFinalized
	stateDeleted // expired or server closed; never visible again
)

// media is one upload session and, after FINALIZE, the media it produced.
// Immutable fields are set at INIT; the rest are guarded by mu.
type media struct {
	id             string
	num            int64
	key            string
	mediaType      string
	category       string
	total          int64
	async          bool // FINALIZE answers processing_info
	sessionExpires time.Time

	mu           sync.Mutex
	state        mediaState
	segs         map[int]int64 // segment index -> bytes, spilled to segPath
	active       int
	maxActive    int
	appends      int
	firstAppend  time.Time
	finalized    time.Time
	mediaExpires time.Time
	size         int64
	sha          string
	invalid      bool // bytes do not match mediaType
	width        int
	height       int
	owner        string // the user that INITed it (identity.user)

	// What the metadata and subtitles endpoints stored (mediameta.go), and
	// how many of their calls were applied.
	meta       *MediaMetadata
	subs       map[string]SubtitleTrack // language code -> track
	metaCalls  int
	subCreates int
	subDeletes int

	// The running digest (digest.go). hashMu is held while hashing and is
	// taken before mu; hashed and hashing are guarded by mu, digest and
	// head by hashMu.
	hashMu  sync.Mutex
	digest  hash.Hash
	head    headWriter
	hashed  int  // segments 0..hashed-1 are in digest
	hashing int  // segment being read into digest, -1 when none
	dirty   bool // a hashed segment was replaced: FINALIZE rehashes all
}

// store holds every live media and the directory its segments spill to.
type store struct {
	dir      string
	now      func() time.Time
	procTime time.Duration // Options.ProcessingTime

	mu    sync.Mutex
	media map[string]*media

	active    atomic.Int64 // APPENDs in flight over all media
	maxActive atomic.Int64
}

func newStore(parent string, now func() time.Time, procTime time.Duration) (*store, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "xfake-*")
	if err != nil {
		return nil, err
	}
	return &store{dir: dir, now: now, procTime: procTime, media: map[string]*media{}}, nil
}

// initParams are INIT's validated parameters, whatever the dialect.
type initParams struct {
	mediaType  string
	category   string
	totalBytes int64
	oneShot    bool // a simple upload: always synchronous
	owner      string
}

// create registers a new upload session; newID must return a fresh 19-digit
// id on each call.
func (st *store) create(p initParams, ttl time.Duration, newID func() int64) *media {
	st.mu.Lock()
	defer st.mu.Unlock()
	num := newID()
	for st.media[strconv.FormatInt(num, 10)] != nil {
		num = newID()
	}
	id := strconv.FormatInt(num, 10)
	m := &media{
		id:             id,
		num:            num,
		key:            keyPrefix(p.mediaType, p.category) + "_" + id,
		mediaType:      p.mediaType,
		category:       p.category,
		total:          p.totalBytes,
		async:          !p.oneShot && p.category != "" && (isVideo(p.mediaType) || p.mediaType == "image/gif"),
		sessionExpires: st.now().Add(ttl),
		segs:           map[int]int64{},
		hashing:        -1,
		owner:          p.owner,
	}
	st.media[id] = m
	return m
}

// keyPrefix is the observed media_key prefix: 3_ image, 7_ tweet/dm video,
// 13_ amplify video, 16_ GIF. Subtitles and models have no observed prefix and
// get 3_.
func keyPrefix(mediaType, category string) string {
	switch category {
	case "amplify_video":
		return "13"
	case "tweet_video", "dm_video":
		return "7"
	case "tweet_gif", "dm_gif":
		return "16"
	case "tweet_image", "dm_image", "subtitles":
		return "3"
	}
	switch {
	case isVideo(mediaType):
		return "7"
	case mediaType == "image/gif":
		return "16"
	}
	return "3"
}

func isVideo(mediaType string) bool { return strings.HasPrefix(mediaType, "video/") }

// lock returns the live media with id, with its mu held, or errUnknownMedia.
// Expired media is deleted on the way.
func (st *store) lock(id string) (*media, *opError) {
	st.mu.Lock()
	m := st.media[id]
	st.mu.Unlock()
	if m == nil {
		return nil, opErr(errUnknownMedia)
	}
	m.mu.Lock()
	if m.state == stateDeleted {
		m.mu.Unlock()
		return nil, opErr(errUnknownMedia)
	}
	if m.expired(st.now()) {
		st.deleteLocked(m)
		m.mu.Unlock()
		return nil, opErr(errUnknownMedia)
	}
	return m, nil
}

func (m *media) expired(now time.Time) bool {
	switch m.state {
	case stateUploading:
		return !now.Before(m.sessionExpires)
	case stateFinalized:
		return !now.Before(m.mediaExpires)
	}
	return true
}

// deleteLocked forgets m and removes its spilled segments; m.mu is held.
func (st *store) deleteLocked(m *media) {
	st.removeSegmentsLocked(m)
	m.state = stateDeleted
	st.mu.Lock()
	if st.media[m.id] == m {
		delete(st.media, m.id)
	}
	st.mu.Unlock()
}

func (st *store) removeSegmentsLocked(m *media) {
	for idx := range m.segs {
		_ = os.Remove(st.segPath(m, idx))
	}
}

func (st *store) segPath(m *media, idx int) string {
	return filepath.Join(st.dir, m.id+"-"+strconv.Itoa(idx))
}

// drop deletes m at once, as if it had expired.
func (st *store) drop(m *media) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateDeleted {
		st.deleteLocked(m)
	}
}

// sweep deletes every expired media; the janitor calls it periodically.
func (st *store) sweep() {
	st.mu.Lock()
	all := make([]*media, 0, len(st.media))
	for _, m := range st.media {
		all = append(all, m)
	}
	st.mu.Unlock()
	now := st.now()
	for _, m := range all {
		m.mu.Lock()
		if m.state != stateDeleted && m.expired(now) {
			st.deleteLocked(m)
		}
		m.mu.Unlock()
	}
}

// close deletes every media and the spill directory.
func (st *store) close() error {
	st.mu.Lock()
	all := st.media
	st.media = map[string]*media{}
	st.mu.Unlock()
	for _, m := range all {
		m.mu.Lock()
		m.state = stateDeleted
		m.mu.Unlock()
	}
	return os.RemoveAll(st.dir)
}
