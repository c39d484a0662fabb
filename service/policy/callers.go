package policy

import (
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/mediagw/mediagw/service/bytesize"
)

// callersFile is the --callers file: per caller identity, the X accounts
// it may use, whether it may pass its own X user token, and its quotas
// (sizes as 512MiB, 2GB or a number of bytes; absent limits are none).
// Callers not listed are refused unless others is given.
//
//	callers:
//	  spiffe://example.org/video-svc:
//	    name: video-svc             # its metric label (default: the identity)
//	    accounts: [brand, default]  # default is the --x-* credentials
//	    default_account: brand      # default: the first of accounts
//	    user_tokens: false          # may it pass X-Access-Token?
//	    max_concurrent_uploads: 4
//	    max_file_bytes: 512MiB
//	    bytes_per_hour: 2GiB
//	    bytes_per_day: 20GiB
//	    status_per_second: 10       # GetStatus/WatchStatus calls (default 10, -1: no limit)
//	    keys_per_hour: 10000        # new idempotency keys (default 10000, -1: no limit)
//	others:                         # any other authenticated caller
//	  accounts: [default]
//	  max_concurrent_uploads: 1
type callersFile struct {
	Callers map[string]callerSpec `yaml:"callers"`
	Others  *callerSpec           `yaml:"others"`
}

type callerSpec struct {
	Name                 string   `yaml:"name"`
	Accounts             []string `yaml:"accounts"`
	DefaultAccount       string   `yaml:"default_account"`
	UserTokens           bool     `yaml:"user_tokens"`
	MaxConcurrentUploads int      `yaml:"max_concurrent_uploads"`
	MaxFileBytes         yamlSize `yaml:"max_file_bytes"`
	BytesPerHour         yamlSize `yaml:"bytes_per_hour"`
	BytesPerDay          yamlSize `yaml:"bytes_per_day"`
	StatusPerSecond      float64  `yaml:"status_per_second"`
	KeysPerHour          int      `yaml:"keys_per_hour"`
}

// yamlSize is a byte count written as 512MiB, 2GB or 1048576.
type yamlSize int64

func (s *yamlSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := bytesize.Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = yamlSize(v)
	return nil
}

func (c callerSpec) policy() CallerPolicy {
	return CallerPolicy{
		Name: c.Name, Accounts: c.Accounts, DefaultAccount: c.DefaultAccount, UserTokens: c.UserTokens,
		MaxConcurrentUploads: c.MaxConcurrentUploads, MaxFileBytes: int64(c.MaxFileBytes),
		BytesPerHour: int64(c.BytesPerHour), BytesPerDay: int64(c.BytesPerDay), StatusPerSecond: c.StatusPerSecond, KeysPerHour: c.KeysPerHour,
	}
}

// LoadCallers reads the --callers file; every account it names must be
// one of accounts.
func LoadCallers(path string, accounts []string) (*Policy, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--callers: %w", err)
	}
	var f callersFile
	if err := strictYAML(raw, &f); err != nil {
		return nil, fmt.Errorf("--callers %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, a := range accounts {
		known[a] = true
	}
	p := &Policy{Callers: map[string]CallerPolicy{}}
	var errs []error
	check := func(who string, c callerSpec) {
		for _, a := range c.Accounts {
			if !known[a] {
				errs = append(errs, fmt.Errorf("%s: account %q is not configured (accounts: %v)", who, a, accounts))
			}
		}
	}
	for id, c := range f.Callers {
		check(fmt.Sprintf("caller %q", id), c)
		p.Callers[id] = c.policy()
	}
	if f.Others != nil {
		check("others", *f.Others)
		o := f.Others.policy()
		p.Others = &o
	}
	errs = append(errs, p.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("--callers %s: %w", path, err)
	}
	return p, nil
}
