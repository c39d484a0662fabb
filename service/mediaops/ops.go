package mediaops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"github.com/mediagw/mediagw/service/ledger"
	"github.com/mediagw/mediagw/service/relay"
)

// Config configures Ops.
type Config struct {
	// X makes the calls. Required.
	X backend.MediaActions
	// Dialect names X's API dialect in errors (v2, v2-command, v1.1).
	Dialect string
	// Relay is the status relay: who owns which media, and the polls that
	// say when processed media is usable. Required.
	Relay *relay.Hub
	// Store keeps what Ops knows of each uploaded media (its category, key
	// and ledger entry) for the media's lifetime: shared between replicas
	// (the relay's Redis store), or beside the ledger in its file. Default:
	// an in-process store, lost with the process.
	Store Records
	// Ledger holds the actions of keyed uploads; nil refuses uploads that
	// name metadata or subtitles.
	Ledger ledger.Ledger
	// ScanEvery is how often the ledger is scanned for uploads whose
	// actions are still open (after a restart, or another replica's
	// death); default 30s. Only ledgers that are a ledger.Scanner are
	// scanned, through their index of pending actions when they are a
	// ledger.PendingScanner.
	ScanEvery time.Duration
	// CallTimeout bounds one X call made after an upload; default 30s.
	CallTimeout time.Duration
	// StatusTTL is how long a media record lives when X did not say how
	// long the media id does; default 24h.
	StatusTTL time.Duration
	Logger    *slog.Logger
	// MeterProvider defaults to the otel global.
	MeterProvider metric.MeterProvider
}

// Records keeps small values that expire; relay.StatusStore is one.
type Records interface {
	// Put stores value under key for ttl.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value of key, or relay.ErrNoEntry once it expired or
	// was never stored.
	Get(ctx context.Context, key string) ([]byte, error)
}

// Ops does the work on uploaded media. Close it to stop its watches and
// scans.
type Ops struct {
	cfg    Config
	log    *slog.Logger
	store  Records
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	watching map[string]bool // ledger keys whose media is being watched

	// ended counts the actions that ended, by result.
	ended metric.Int64Counter
}

// New returns Ops; Start begins its ledger scans.
func New(cfg Config) (*Ops, error) {
	if cfg.X == nil || cfg.Relay == nil {
		return nil, errors.New("mediaops: Config.X and Relay are required")
	}
	if cfg.ScanEvery <= 0 {
		cfg.ScanEvery = 30 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Store == nil {
		cfg.Store = relay.NewMemoryStatusStore(0)
	}
	if cfg.Dialect == "" {
		cfg.Dialect = "v2"
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	ended, err := mp.Meter("github.com/mediagw/mediagw/service").Int64Counter("mediagw.media_actions.ended",
		metric.WithDescription("Metadata and subtitles calls made after uploads that ended, by result (applied, failed, unknown: X may have applied it and nothing shows whether it did)."))
	if err != nil {
		return nil, err
	}
	o := &Ops{cfg: cfg, log: cfg.Logger, store: cfg.Store, watching: map[string]bool{}, ended: ended}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o, nil
}

// Start scans the ledger at once and then every Config.ScanEvery for
// uploads whose actions are still open.
func (o *Ops) Start() {
	sc, ok := o.cfg.Ledger.(ledger.Scanner)
	if !ok {
		return
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		t := time.NewTicker(o.cfg.ScanEvery)
		defer t.Stop()
		for {
			o.scan(sc)
			select {
			case <-t.C:
			case <-o.ctx.Done():
				return
			}
		}
	}()
}

// Close stops the watches and scans and waits for them.
func (o *Ops) Close() {
	o.cancel()
	o.wg.Wait()
}

// scan takes up every completed upload whose actions are still open. A
// ledger that indexes them (a ledger.PendingScanner) is read through its
// index: only those entries, not the whole ledger.
func (o *Ops) scan(sc ledger.Scanner) {
	type found struct{ key, mediaID string }
	var open []found
	list := sc.Scan
	if ps, ok := sc.(ledger.PendingScanner); ok {
		list = ps.ScanPending
	}
	err := list(o.ctx, func(key string, e *ledger.Entry) bool {
		if e.ActionsPending() {
			open = append(open, found{key, e.MediaID})
		}
		return o.ctx.Err() == nil
	})
	if err != nil && o.ctx.Err() == nil {
		o.log.Warn("mediaops: scanning the ledger failed", "error", err.Error())
	}
	for _, f := range open {
		if o.isWatched(f.key) {
			continue
		}
		_, _ = o.take(f.key, f.mediaID, nil)
	}
}

// media is what Ops keeps of one uploaded media, in the store, for the
// media's lifetime.
type media struct {
	Category  string `json:"category,omitempty"`
	Key       string `json:"key,omitempty"`
	Entry     string `json:"entry,omitempty"` // the ledger key of a keyed upload
	Account   string `json:"account,omitempty"`
	UserToken bool   `json:"user_token,omitempty"`
	// Processed is set when the upload's FINALIZE answered processing
	// info: the media is usable once processing SUCCEEDED.
	Processed bool `json:"processed,omitempty"`
}

func mediaKey(id string) string { return "mediaops/" + id }

const storeTimeout = 5 * time.Second

func (o *Ops) putMedia(id string, m media, ttl time.Duration) {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := o.store.Put(ctx, mediaKey(id), b, ttl); err != nil {
		o.log.Warn("mediaops: recording an uploaded media failed", "media_id", id, "error", err.Error())
	}
}

// mediaOf returns the record of id; ok false when mediagw has none.
func (o *Ops) mediaOf(ctx context.Context, id string) (media, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	b, err := o.store.Get(ctx, mediaKey(id))
	if errors.Is(err, relay.ErrNoEntry) {
		return media{}, false, nil
	}
	if err != nil {
		return media{}, false, apierr.ToStatus(&apierr.Error{Code: codes.Unavailable, Msg: "mediagw's status store is unavailable: " + err.Error()})
	}
	var m media
	if err := json.Unmarshal(b, &m); err != nil {
		return media{}, false, err
	}
	return m, true, nil
}

// isVideo reports whether category takes subtitles.
func isVideo(category string) bool { return category == "tweet_video" || category == "amplify_video" }

// Plan checks the metadata and subtitles an upload names, before INIT, and
// returns them as the ledger keeps them (nil when it names neither).
// category is X's wire name of the upload's category; keyed says whether
// it has an idempotency key.
func (o *Ops) Plan(ctx context.Context, c backend.Caller, start *mediagwv1.UploadStart, category string, keyed bool) (*ledger.Actions, error) {
	md, subs := start.GetMetadata(), start.GetSubtitles()
	if md == nil && len(subs) == 0 {
		return nil, nil
	}
	if !keyed {
		return nil, apierr.Invalidf("metadata and subtitles named at upload are applied exactly once through mediagw's ledger: give the upload an idempotency_key")
	}
	if o.cfg.Ledger == nil {
		return nil, &apierr.Error{Code: codes.FailedPrecondition, Msg: "metadata and subtitles named at upload need mediagw's ledger, which is off"}
	}
	a := &ledger.Actions{Account: c.Auth.Account, UserToken: c.Auth.Token != ""}
	if md != nil {
		if err := o.checkMetadata(md, category); err != nil {
			return nil, err
		}
		a.Metadata, _ = protojson.Marshal(md)
		a.MetaSt = ledger.ActionState{Step: ledger.StepPending}
	}
	if len(subs) > 0 && !isVideo(category) {
		return nil, apierr.Invalidf("subtitles attach to videos only (media_category tweet_video or amplify_video), not to %s", orNone(category))
	}
	seen := map[string]bool{}
	for _, s := range subs {
		t := backend.Subtitles{MediaID: s.GetSubtitlesMediaId(), LanguageCode: s.GetLanguageCode(), DisplayName: s.GetDisplayName()}
		if err := o.checkTrack(ctx, c, t); err != nil {
			return nil, err
		}
		if seen[t.LanguageCode] {
			return nil, apierr.Invalidf("subtitles name language %s twice", t.LanguageCode)
		}
		seen[t.LanguageCode] = true
		a.Subtitles = append(a.Subtitles, ledger.SubtitlesAction{MediaID: t.MediaID, LanguageCode: t.LanguageCode,
			DisplayName: t.DisplayName, State: ledger.ActionState{Step: ledger.StepPending}})
	}
	return a, nil
}

func orNone(s string) string {
	if s == "" {
		return "media without a category"
	}
	return s
}

// checkMetadata refuses metadata X would refuse, without calling X.
func (o *Ops) checkMetadata(md *mediagwv1.MediaMetadata, category string) error {
	if isEmpty(md) {
		return apierr.Invalidf("metadata sets nothing: give alt_text or another field")
	}
	if md.AltText != nil && o.cfg.Dialect == "v1.1" && !strings.HasSuffix(category, "image") && !strings.HasSuffix(category, "gif") && category != "" {
		return apierr.Invalidf("X's v1.1 API (mediagw's dialect) takes alt text on images and GIFs only, not on %s", category)
	}
	return o.cfg.X.CheckMetadata(toBackend(md))
}

// checkTrack checks a subtitles track: its language code, and that its
// media is a subtitles upload of the caller's.
func (o *Ops) checkTrack(ctx context.Context, c backend.Caller, t backend.Subtitles) error {
	if !validLanguage(t.LanguageCode) {
		return apierr.Invalidf("language_code %s is not a language code as X takes it: two upper-case letters (EN, FR)", apierr.Quote(t.LanguageCode))
	}
	if _, err := o.cfg.Relay.Access(c, t.MediaID); err != nil {
		return err
	}
	m, ok, err := o.mediaOf(ctx, t.MediaID)
	if err != nil {
		return err
	}
	if !ok {
		return apierr.NotFoundf("subtitles media %s was not uploaded through mediagw by this caller, or has expired", t.MediaID)
	}
	if m.Category != "subtitles" {
		return apierr.Invalidf("media %s is not a subtitles upload (its category is %s)", t.MediaID, orNone(m.Category))
	}
	return nil
}

// validLanguage is X's rule for subtitles language codes: two upper-case
// ASCII letters.
func validLanguage(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// Completed is told of every upload X accepted (also a replayed one):
// it records the media for later calls and, when the upload's ledger entry
// (entry, empty for an upload without a key) has open actions, applies
// them now if the media is usable, or once its processing succeeded. It
// returns the actions' state for the response.
func (o *Ops) Completed(ctx context.Context, c backend.Caller, entry, category string, resp *mediagwv1.UploadResponse) *mediagwv1.MediaActions {
	processed := resp.GetProcessing() != nil && resp.GetProcessing().GetState() != mediagwv1.ProcessingState_PROCESSING_STATE_SUCCEEDED
	ttl := o.cfg.StatusTTL
	if s := resp.GetExpiresAfterSecs(); s > 0 {
		ttl = time.Duration(s) * time.Second
	}
	o.putMedia(resp.GetMediaId(), media{Category: category, Key: resp.GetMediaKey(), Entry: entry, Account: c.Auth.Account,
		UserToken: c.Auth.Token != "", Processed: processed}, ttl)
	if entry == "" || o.cfg.Ledger == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	e, err := o.cfg.Ledger.Get(ctx, entry)
	if err != nil || !e.Actions.Open() {
		if err != nil {
			return nil
		}
		return Proto(e.Actions)
	}
	auth := c.Auth
	if got, _ := o.take(entry, resp.GetMediaId(), &auth); got != nil {
		return Proto(got.Actions)
	}
	return Proto(e.Actions)
}

// Same refuses a resume or replay of an upload whose start names other
// metadata or subtitles than the upload's first start; a start naming
// none continues the upload with its own (as other omitted fields do).
func (o *Ops) Same(a *ledger.Actions, start *mediagwv1.UploadStart) error {
	md, subs := start.GetMetadata(), start.GetSubtitles()
	if md == nil && len(subs) == 0 {
		return nil
	}
	differ := apierr.Invalidf("metadata and subtitles differ from those the upload of this idempotency key was started with; " +
		"another upload needs another key")
	if a == nil {
		return differ
	}
	if md != nil {
		if a.Metadata == nil {
			return differ
		}
		if had, err := metadataOf(a); err != nil || !proto.Equal(had, md) {
			return differ
		}
	} else if a.Metadata != nil {
		return differ
	}
	if len(subs) != len(a.Subtitles) {
		return differ
	}
	for i, s := range subs {
		h := a.Subtitles[i]
		if s.GetSubtitlesMediaId() != h.MediaID || s.GetLanguageCode() != h.LanguageCode || s.GetDisplayName() != h.DisplayName {
			return differ
		}
	}
	return nil
}

// Proto is the caller's view of an entry's actions (see [Proto]).
func (o *Ops) Proto(a *ledger.Actions) *mediagwv1.MediaActions { return Proto(a) }

// Actions returns the state of the actions of mediaID's upload, nil when
// it named none (or mediagw has no record of it).
func (o *Ops) Actions(ctx context.Context, mediaID string) *mediagwv1.MediaActions {
	m, ok, err := o.mediaOf(ctx, mediaID)
	if err != nil || !ok || m.Entry == "" || o.cfg.Ledger == nil {
		return nil
	}
	e, err := o.cfg.Ledger.Get(ctx, m.Entry)
	if err != nil {
		return nil
	}
	return Proto(e.Actions)
}
