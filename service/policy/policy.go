package policy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mediagw/mediagw/service/apierr"
	"github.com/mediagw/mediagw/service/backend"
	"golang.org/x/time/rate"
)

// Policy says which callers may use which X accounts, whether they may
// pass their own X user tokens, and how much they may upload. Set it with
// [Server.SetPolicy]. Without one, every caller may use the default
// account and pass its own X user token, with no quotas.
type Policy struct {
	// Callers are the rules by caller identity ([Identity.ID]).
	Callers map[string]CallerPolicy
	// Others, when set, applies to authenticated callers not in Callers;
	// nil refuses them (PermissionDenied).
	Others *CallerPolicy
}

// DefaultAccount names mediagw's own default X credentials among the
// accounts a caller may use.
const DefaultAccount = "default"

// Metric labels of callers the policy does not name.
const (
	labelOther     = "other"     // authenticated, not named in the policy
	labelAnonymous = "anonymous" // no authentication configured
)

// CallerPolicy is what one caller may do. Zero limits are unlimited.
type CallerPolicy struct {
	// Name labels the caller's metrics; default its identity. Names are
	// what keeps the caller label bounded: only the policy's appear.
	Name string
	// Accounts are the X accounts the caller may use (UploadStart.account,
	// REST account=); DefaultAccount is mediagw's own.
	Accounts []string
	// DefaultAccount is used when an upload names no account; default the
	// first of Accounts. With neither, the caller must pass its own X user
	// token.
	DefaultAccount string
	// UserTokens lets the caller pass its own X user token (x-access-token
	// metadata, REST X-Access-Token) instead of using an account.
	UserTokens bool
	// MaxConcurrentUploads bounds the caller's uploads in progress.
	MaxConcurrentUploads int
	// MaxFileBytes bounds one upload's total_bytes.
	MaxFileBytes int64
	// BytesPerHour and BytesPerDay bound the bytes the caller uploads in
	// any rolling hour and day. An upload holds its total_bytes from its
	// start (so a file that would not fit is refused before X sees it),
	// and one that fails gives back the bytes that never reached X.
	BytesPerHour, BytesPerDay int64
	// StatusPerSecond bounds the caller's GetStatus and WatchStatus calls
	// (each may cost a STATUS call at X, whose budget the callers of an
	// account share), with bursts of twice as many; 0 is
	// DefaultStatusPerSecond, a negative value no limit.
	StatusPerSecond float64
	// KeysPerHour bounds the new idempotency keys (keyed uploads, each a
	// ledger entry that lives as long as its media) the caller starts per
	// hour, with bursts of as many; resumes and replays are not counted.
	// 0 is DefaultKeysPerHour, a negative value no limit.
	KeysPerHour int
}

// DefaultKeysPerHour is a caller's new idempotency keys per hour when its
// rule says none: with about 2 KB per ledger entry, a day at this rate
// costs the ledger some 500 MB at most.
const DefaultKeysPerHour = 10_000

// DefaultStatusPerSecond is a caller's status calls per second when its
// rule says none: far above what watching its own uploads takes, far
// below what would spend an X account's STATUS window (1,000 per 15
// minutes per user) in a moment.
const DefaultStatusPerSecond = 10

// openRule applies when no policy is set.
var openRule = CallerPolicy{Accounts: []string{DefaultAccount}, DefaultAccount: DefaultAccount, UserTokens: true}

// defaultAccount is the account of an upload that names none ("" when the
// caller must pass its own token).
func (r *CallerPolicy) defaultAccount() string {
	if r.DefaultAccount != "" {
		return r.DefaultAccount
	}
	if len(r.Accounts) > 0 {
		return r.Accounts[0]
	}
	return ""
}

func (r *CallerPolicy) mayUse(account string) bool {
	for _, a := range r.Accounts {
		if a == account {
			return true
		}
	}
	return false
}

func (r *CallerPolicy) validate(who string) error {
	if r.MaxConcurrentUploads < 0 || r.MaxFileBytes < 0 || r.BytesPerHour < 0 || r.BytesPerDay < 0 {
		return fmt.Errorf("%s: limits must not be negative", who)
	}
	if r.DefaultAccount != "" && !r.mayUse(r.DefaultAccount) {
		return fmt.Errorf("%s: default account %q is not among its accounts", who, r.DefaultAccount)
	}
	if r.Name == labelOther || r.Name == labelAnonymous {
		return fmt.Errorf("%s: the name %q is reserved", who, r.Name)
	}
	return nil
}

// Validate checks a policy for contradictions: negative limits, a default
// account the caller may not use, names that repeat or are reserved.
func (p *Policy) Validate() error {
	names := map[string]string{}
	var errs []error
	for id, r := range p.Callers {
		if id == "" {
			errs = append(errs, errors.New("a caller has an empty identity"))
			continue
		}
		if err := r.validate(fmt.Sprintf("caller %q", id)); err != nil {
			errs = append(errs, err)
		}
		name := r.Name
		if name == "" {
			name = id
		}
		if other, dup := names[name]; dup {
			errs = append(errs, fmt.Errorf("callers %q and %q have the same name %q", other, id, name))
		}
		names[name] = id
	}
	if p.Others != nil {
		if err := p.Others.validate("others"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Policies holds the current policy and every caller's use of its quotas;
// the use survives a policy change.
type Policies struct {
	anonymous bool // no authentication: every caller is ""
	now       func() time.Time

	mu        sync.Mutex
	p         *Policy
	use       map[string]*usage
	lastSweep time.Time
	// status and keys hold each caller's limiters of status calls and of
	// new idempotency keys.
	status map[string]*statusLimit
	keys   map[string]*statusLimit
}

type statusLimit struct {
	l    *rate.Limiter
	rate float64
	last time.Time
}

// New returns the policies of a mediagw; anonymous when it runs without
// authentication (every caller is the same, and no policy may be set).
func New(anonymous bool) *Policies {
	return &Policies{anonymous: anonymous, now: time.Now, use: map[string]*usage{}, status: map[string]*statusLimit{}, keys: map[string]*statusLimit{}}
}

// Set replaces the callers policy (nil: every caller may use the
// default account and its own X tokens, without quotas). Uploads in
// progress keep what they were admitted with; quota use carries over.
func (ps *Policies) Set(p *Policy) error {
	if p != nil {
		if ps.anonymous {
			return errors.New("policy: a callers policy needs authentication: without it every caller is the same")
		}
		if err := p.Validate(); err != nil {
			return err
		}
	}
	ps.mu.Lock()
	ps.p = p
	ps.mu.Unlock()
	return nil
}

// rule returns the caller's rule and metric label, or PermissionDenied for
// a caller the policy does not know.
func (ps *Policies) rule(id string) (CallerPolicy, string, error) {
	ps.mu.Lock()
	p := ps.p
	ps.mu.Unlock()
	switch {
	case p == nil && ps.anonymous:
		return openRule, labelAnonymous, nil
	case p == nil:
		return openRule, labelOther, nil
	}
	if r, ok := p.Callers[id]; ok {
		label := r.Name
		if label == "" {
			label = id
		}
		return r, label, nil
	}
	if p.Others != nil {
		return *p.Others, labelOther, nil
	}
	return CallerPolicy{}, labelOther, apierr.Deniedf("caller %s is not allowed by the callers policy", apierr.Quote(id))
}

// label is the metric label of the caller id.
func (ps *Policies) Label(id string) string {
	_, label, _ := ps.rule(id)
	return label
}

// Authorize resolves who c is to the policy: for an upload (upload true)
// the account it uses, which is set on c.Auth. It refuses a caller the
// policy does not know, a user token the caller may not pass, and an
// account it may not use.
func (ps *Policies) Authorize(c *backend.Caller, account string, upload bool) error {
	_, err := ps.authorize(c, account, upload)
	return err
}
func (ps *Policies) authorize(c *backend.Caller, account string, upload bool) (CallerPolicy, error) {
	r, _, err := ps.rule(c.ID)
	if err != nil {
		return r, err
	}
	if c.Auth.Token != "" {
		if !r.UserTokens {
			return r, apierr.Deniedf("caller %s may not pass its own X user token; use an account", apierr.Quote(c.ID))
		}
		if account != "" {
			return r, apierr.Invalidf("account %s and an X user token exclude each other: send one", apierr.Quote(account))
		}
		return r, nil
	}
	if !upload {
		return r, nil
	}
	if account == "" {
		if account = r.defaultAccount(); account == "" {
			return r, apierr.Deniedf("caller %s has no default X account: name one in account or pass an X user token", apierr.Quote(c.ID))
		}
	}
	if !r.mayUse(account) {
		return r, apierr.Deniedf("caller %s may not use X account %s", apierr.Quote(c.ID), apierr.Quote(account))
	}
	if account != DefaultAccount {
		c.Auth.Account = account
	}
	return r, nil
}

// Admit checks an upload against the caller's permissions and quotas
// before anything reaches X, and charges it: its total_bytes from base on
// (a resume's committed bytes are not charged again). An upload of unknown
// size is charged once its size is known ([Ticket.sized]). done gives back
// what the upload did not use.
func (ps *Policies) Admit(c *backend.Caller, account string, spec backend.Spec, base int64) (*Ticket, error) {
	r, err := ps.authorize(c, account, true)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	ps.sweepLocked(now)
	u := ps.use[c.ID]
	if u == nil {
		u = &usage{}
		ps.use[c.ID] = u
	}
	u.prune(now)
	t := &Ticket{ps: ps, u: u, rule: r, id: c.ID, minute: minuteOf(now)}
	// What waiting cannot mend is said first.
	if spec.TotalBytes > 0 {
		if err := t.fits(spec.TotalBytes, spec.TotalBytes-base); err != nil {
			return nil, err
		}
	}
	if r.MaxConcurrentUploads > 0 && u.inFlight >= r.MaxConcurrentUploads {
		return nil, apierr.OverQuota(t.subject(), concurrencyRetry, "caller %s has %d uploads in progress, its limit", apierr.Quote(c.ID), u.inFlight)
	}
	if spec.TotalBytes > 0 {
		if err := t.chargeLocked(now, spec.TotalBytes, spec.TotalBytes-base); err != nil {
			return nil, err
		}
	}
	u.inFlight++
	return t, nil
}

// concurrencyRetry is the RetryInfo of a caller at its concurrency limit:
// nothing says when an upload ends, so a short wait.
const concurrencyRetry = time.Second

// sweepLocked forgets callers with nothing in flight and nothing charged
// within a day, at most every ten minutes (a caller with an upload in
// flight is kept, so its Ticket's usage stays the caller's).
func (ps *Policies) sweepLocked(now time.Time) {
	if now.Sub(ps.lastSweep) < 10*time.Minute {
		return
	}
	ps.lastSweep = now
	for id, u := range ps.use {
		if u.prune(now); u.inFlight == 0 && len(u.charges) == 0 {
			delete(ps.use, id)
		}
	}
	for _, limits := range []map[string]*statusLimit{ps.status, ps.keys} {
		for id, sl := range limits {
			if now.Sub(sl.last) > time.Hour {
				delete(limits, id)
			}
		}
	}
}

// Ticket is an admitted upload's hold on its caller's quotas.
type Ticket struct {
	ps      *Policies
	u       *usage
	rule    CallerPolicy
	id      string
	minute  int64 // of the charge
	charged int64
	once    sync.Once
}

func (t *Ticket) subject() string { return "caller:" + t.id }

// maxFile is the caller's largest file (0: no limit), which also bounds
// what an upload of unknown size may spool.
func (t *Ticket) MaxFile() int64 {
	if t == nil {
		return 0
	}
	return t.rule.MaxFileBytes
}

// windows are a rule's byte quotas.
func (r *CallerPolicy) windows() []struct {
	limit, minutes int64
	name           string
} {
	return []struct {
		limit, minutes int64
		name           string
	}{{r.BytesPerHour, 60, "hour"}, {r.BytesPerDay, dayMinutes, "day"}}
}

// fits refuses an upload of total bytes, n of them still to come, that no
// wait would let through: larger than the caller's largest file, or than
// a whole window's quota.
func (t *Ticket) fits(total, n int64) error {
	r, who := t.rule, apierr.Quote(t.id)
	if r.MaxFileBytes > 0 && total > r.MaxFileBytes {
		return apierr.OverQuota(t.subject(), 0, "total_bytes %d is more than caller %s's largest file (%d bytes)", total, who, r.MaxFileBytes)
	}
	for _, w := range r.windows() {
		if w.limit > 0 && n > w.limit {
			return apierr.OverQuota(t.subject(), 0, "total_bytes %d is more than caller %s may upload per %s (%d bytes)", n, who, w.name, w.limit)
		}
	}
	return nil
}

// chargeLocked checks an upload of total bytes, n of them still to come,
// against the caller's largest file and bytes per hour and day, and
// charges the n bytes.
func (t *Ticket) chargeLocked(now time.Time, total, n int64) error {
	if err := t.fits(total, n); err != nil {
		return err
	}
	who := apierr.Quote(t.id)
	for _, w := range t.rule.windows() {
		switch {
		case w.limit <= 0:
		case t.u.used(now, w.minutes)+n > w.limit:
			used := t.u.used(now, w.minutes)
			wait := t.u.wait(now, w.minutes, w.limit, n)
			return apierr.OverQuota(t.subject(), wait, "caller %s uploaded %d of its %d bytes per %s; %d more do not fit (retry in %s)",
				who, used, w.limit, w.name, n, wait.Round(time.Second))
		}
	}
	t.minute = minuteOf(now)
	t.u.charge(t.minute, n)
	t.charged = n
	return nil
}

// sized charges an upload whose size became known after admit (it was
// spooled): nothing has reached X yet.
func (t *Ticket) Sized(total int64) error {
	if t == nil {
		return nil
	}
	t.ps.mu.Lock()
	defer t.ps.mu.Unlock()
	return t.chargeLocked(t.ps.now(), total, total)
}

// done ends the upload: sent bytes may have reached X and stay charged;
// the rest is given back.
func (t *Ticket) Done(sent int64) {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.ps.mu.Lock()
		defer t.ps.mu.Unlock()
		t.u.inFlight--
		t.u.refund(t.minute, t.charged-min(max(sent, 0), t.charged))
	})
}
