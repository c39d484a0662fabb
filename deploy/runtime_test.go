package deploy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeploymentStartsWithItsConfig starts the real mediagw with the
// rendered Deployment's arguments, environment and mounted files (paths
// moved under a temporary directory, listeners on loopback, X the
// emulator): the overlay's callers policy, JWKS and accounts file load, the
// probe paths answer on the admin port, authentication is on, and SIGTERM
// drains within the grace period.
func TestDeploymentStartsWithItsConfig(t *testing.T) {
	r := index(t, render(t, overlay))
	d := r.deployment(t)
	c := d.Spec.Template.Spec.Containers[0]
	root := t.TempDir()
	move := func(s string) string {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(s, m.MountPath) {
				return filepath.Join(root, s)
			}
		}
		return s
	}
	var pairs []string
	for _, m := range c.VolumeMounts {
		pairs = append(pairs, m.MountPath+"/", filepath.Join(root, m.MountPath)+"/")
	}
	inRoot := strings.NewReplacer(pairs...)
	// The mounted ConfigMap and Secret, as the kubelet would write them.
	for _, v := range d.Spec.Template.Spec.Volumes {
		var mount string
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mount = filepath.Join(root, m.MountPath)
			}
		}
		if err := os.MkdirAll(mount, 0o700); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		switch {
		case v.ConfigMap != nil:
			for k, val := range r.configMap(v.ConfigMap.Name).Data {
				files[k] = val
			}
		case v.Secret != nil:
			for k, val := range r.secret(v.Secret.SecretName).Data {
				files[k] = string(val)
			}
		}
		for k, val := range files {
			// Paths inside the files (an accounts file's {file: …}) move too.
			val = inRoot.Replace(val)
			if err := os.WriteFile(filepath.Join(mount, k), []byte(val), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	xurl := startXfake(t)
	grpcAddr, httpAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	var argv []string
	for _, a := range c.Args {
		name, value, _ := strings.Cut(a, "=")
		switch name {
		case "--grpc-addr":
			value = grpcAddr
		case "--http-addr":
			value = httpAddr
		case "--admin-addr":
			value = adminAddr
		case "--x-api-url":
			value = xurl
		default:
			value = move(value)
		}
		argv = append(argv, name+"="+value)
	}
	var env []string
	for _, e := range c.Env {
		v := secretValue(t, r, e)
		if e.Name == "MEDIAGW_LEDGER" {
			// The Redis of the test run (CI starts one), else a bbolt file.
			if addr := os.Getenv("MEDIAGW_TEST_REDIS"); addr != "" {
				v = "redis://" + addr + "/0?prefix=deploy-test:"
			} else {
				t.Logf("MEDIAGW_TEST_REDIS is not set: the ledger is a bbolt file, not Redis")
				v = filepath.Join(root, "ledger.db")
			}
		}
		env = append(env, e.Name+"="+v)
	}
	p := start(t, env, bins.mediagw, argv...)

	probes := []string{c.StartupProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path}
	for _, path := range probes {
		waitHTTP(t, p, "http://"+adminAddr+path, http.StatusOK, 20*time.Second)
	}
	waitHTTP(t, p, "http://"+adminAddr+"/metrics", http.StatusOK, 5*time.Second)
	if code, _ := upload(t, httpAddr, video(1000), "video/mp4", "tweet_video"); code != http.StatusUnauthorized {
		t.Errorf("an upload without a bearer token: %d, want 401 (authentication is on)", code)
	}

	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("mediagw exited with %v after SIGTERM", p.err)
		}
		t.Logf("stopped %s after SIGTERM", time.Since(began).Round(time.Millisecond))
	case <-time.After(grace):
		t.Errorf("mediagw did not stop within the grace period %s", grace)
	}
}
