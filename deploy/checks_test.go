package deploy

import (
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// pinned is an image reference with a version tag or a digest (never
// latest, never no tag).
var pinned = regexp.MustCompile(`^[a-z0-9./-]+(:v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?|@sha256:[0-9a-f]{64})$`)

func checkDeployment(t *testing.T, r rendered) {
	d := r.deployment(t)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	known := mediagwFlags(t)
	flags := args(t, known, c.Args)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment mediagw: replicas %v, want 3", d.Spec.Replicas)
	}
	for _, f := range []string{"grpc-addr", "http-addr", "admin-addr", "x-api-url", "drain-timeout", "auth-jwks", "auth-issuer", "auth-audience"} {
		if flags[f] == "" {
			t.Errorf("mediagw is started without --%s", f)
		}
	}
	for _, f := range []string{"emulator", "insecure-no-auth", "x-token", "ledger"} {
		if _, ok := flags[f]; ok {
			t.Errorf("mediagw is started with --%s (the emulator, no authentication, or a secret on the command line)", f)
		}
	}

	// Environment twins: every MEDIAGW_* variable names a real flag.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if name, ok := strings.CutPrefix(e.Name, "MEDIAGW_"); ok {
			flag := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			if _, ok := known[flag]; !ok {
				t.Errorf("environment variable %s is the twin of no mediagw flag (--%s)", e.Name, flag)
			}
		}
	}

	// The ledger: a Redis URL, from a Secret, naming the rendered Redis
	// Service and its port.
	ledger := secretValue(t, r, env["MEDIAGW_LEDGER"])
	u := mustURL(t, ledger)
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		t.Errorf("the ledger is %s://…, want a redis:// URL shared by the replicas", u.Scheme)
	}
	host := strings.SplitN(u.Hostname(), ".", 2)[0]
	if svc, ok := r.byName["Service/"+host].(*corev1.Service); !ok {
		t.Errorf("the ledger's host %s is no rendered Service", u.Hostname())
	} else if len(svc.Spec.Ports) != 1 || u.Port() != itoa(svc.Spec.Ports[0].Port) {
		t.Errorf("the ledger's port %s is not Service %s's", u.Port(), host)
	}

	// Ports: the container ports are the ones the flags listen on.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, f := range map[string]string{"grpc": "grpc-addr", "http": "http-addr", "admin": "admin-addr"} {
		if got, want := ports[name], port(t, flags[f]); got != want {
			t.Errorf("container port %s is %d, --%s listens on %d", name, got, f, want)
		}
	}
	probe := func(what string, p *corev1.Probe, wantPath string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: none, or not HTTP", what)
			return
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s probe: path %s, want %s (served on --admin-addr)", what, p.HTTPGet.Path, wantPath)
		}
		if got := resolvePort(p.HTTPGet.Port, ports); got != port(t, flags["admin-addr"]) {
			t.Errorf("%s probe: port %s (%d) is not --admin-addr's", what, p.HTTPGet.Port.String(), got)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, "/healthz")
	}

	// The grace period covers the preStop pause and the whole drain.
	drain, err := time.ParseDuration(flags["drain-timeout"])
	if err != nil {
		t.Fatalf("--drain-timeout: %v", err)
	}
	var pause time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if grace <= pause+drain {
		t.Errorf("terminationGracePeriodSeconds %s does not exceed the preStop pause %s + --drain-timeout %s", grace, pause, drain)
	}

	checkImages(t, r)
	checkSecurity(t, "Deployment mediagw", spec.SecurityContext, c)
	checkResources(t, c, flags)
	checkMounts(t, r, spec, c, flags)
	checkService(t, r, d, ports)
	checkPDB(t, r, d)
	checkNetworkPolicy(t, r, d, ports)
}

func itoa(n int32) string { return resource.NewQuantity(int64(n), resource.DecimalSI).String() }

func resolvePort(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.String {
		return named[p.StrVal]
	}
	return p.IntVal
}

// secretValue is the value of an environment variable taken from a
// rendered Secret.
func secretValue(t *testing.T, r rendered, e corev1.EnvVar) string {
	t.Helper()
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("%s is not taken from a Secret", e.Name)
	}
	ref := e.ValueFrom.SecretKeyRef
	s := r.secret(ref.Name)
	if s == nil {
		t.Fatalf("%s names Secret %s, which is not rendered", e.Name, ref.Name)
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		t.Fatalf("Secret %s has no key %s", ref.Name, ref.Key)
	}
	return string(v)
}

func checkImages(t *testing.T, r rendered) {
	n := 0
	for key, o := range r.byName {
		var pod *corev1.PodSpec
		switch v := o.(type) {
		case *appsv1.Deployment:
			pod = &v.Spec.Template.Spec
		case *appsv1.StatefulSet:
			pod = &v.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			n++
			if !pinned.MatchString(c.Image) {
				t.Errorf("%s: image %q is not pinned by version or digest", key, c.Image)
			}
		}
	}
	if n < 2 {
		t.Errorf("checked %d images; mediagw and Redis have one each", n)
	}
}

func checkSecurity(t *testing.T, what string, pod *corev1.PodSecurityContext, c corev1.Container) {
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == nil || *pod.RunAsUser == 0 {
		t.Errorf("%s: the pod does not run as a non-root user", what)
	}
	s := c.SecurityContext
	switch {
	case s == nil:
		t.Errorf("%s: container %s has no securityContext", what, c.Name)
	case s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
		t.Errorf("%s: container %s has a writable root file system", what, c.Name)
	case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
		t.Errorf("%s: container %s allows privilege escalation", what, c.Name)
	case s.Capabilities == nil || len(s.Capabilities.Drop) != 1 || s.Capabilities.Drop[0] != "ALL" || len(s.Capabilities.Add) != 0:
		t.Errorf("%s: container %s keeps capabilities", what, c.Name)
	}
}

// checkResources: requests and limits for CPU and memory, and a memory
// limit above the soft limit mediagw sets itself from its flags
// (--max-in-flight × (--segment-size + --max-message) + 192 MiB).
func checkResources(t *testing.T, c corev1.Container, flags map[string]string) {
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[n]; !ok {
			t.Errorf("no %s request", n)
		}
		if _, ok := c.Resources.Limits[n]; !ok {
			t.Errorf("no %s limit", n)
		}
	}
	for _, f := range []string{"max-in-flight", "segment-size", "max-message"} {
		if _, ok := flags[f]; ok {
			t.Errorf("--%s is set: the memory check assumes the defaults (64, 4MiB, 1MiB); change it with the limit", f)
		}
	}
	soft := resource.MustParse("512Mi") // 64 × (4 MiB + 1 MiB) + 192 MiB
	lim := c.Resources.Limits[corev1.ResourceMemory]
	req := c.Resources.Requests[corev1.ResourceMemory]
	if lim.Cmp(soft) <= 0 {
		t.Errorf("memory limit %s is not above mediagw's soft memory limit %s", lim.String(), soft.String())
	}
	if req.Cmp(lim) > 0 {
		t.Errorf("memory request %s exceeds the limit %s", req.String(), lim.String())
	}
}

// checkMounts: the files the flags name are keys of the mounted ConfigMap
// or Secret, and what mediagw writes is on a writable volume.
func checkMounts(t *testing.T, r rendered, spec corev1.PodSpec, c corev1.Container, flags map[string]string) {
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mountAt := func(p string) (corev1.VolumeMount, bool) {
		var best corev1.VolumeMount
		found := false
		for _, m := range c.VolumeMounts {
			if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best.MountPath) {
				best, found = m, true
			}
		}
		return best, found
	}
	for _, f := range []string{"auth-jwks", "callers", "accounts"} {
		p := flags[f]
		m, ok := mountAt(p)
		if !ok || path.Dir(p) != m.MountPath {
			t.Errorf("--%s %s is not a file of a mounted volume", f, p)
			continue
		}
		key := path.Base(p)
		v := vols[m.Name]
		switch {
		case v.ConfigMap != nil:
			cm := r.configMap(v.ConfigMap.Name)
			if cm == nil || cm.Data[key] == "" {
				t.Errorf("--%s: ConfigMap %s has no %s", f, v.ConfigMap.Name, key)
			}
		case v.Secret != nil:
			s := r.secret(v.Secret.SecretName)
			if s == nil || len(s.Data[key]) == 0 {
				t.Errorf("--%s: Secret %s has no %s", f, v.Secret.SecretName, key)
			}
		default:
			t.Errorf("--%s: volume %s is neither a ConfigMap nor a Secret", f, m.Name)
		}
	}
	for _, p := range []string{flags["spool-dir"], "/tmp"} {
		m, ok := mountAt(p)
		if !ok || m.ReadOnly || vols[m.Name].EmptyDir == nil {
			t.Errorf("%s is not on a writable emptyDir volume (the root file system is read-only)", p)
		}
	}
}

func checkService(t *testing.T, r rendered, d *appsv1.Deployment, ports map[string]int32) {
	svc, ok := r.byName["Service/mediagw"].(*corev1.Service)
	if !ok {
		return
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service mediagw's selector %v does not select the pods", svc.Spec.Selector)
	}
	got := map[string]string{}
	for _, p := range svc.Spec.Ports {
		if resolvePort(p.TargetPort, ports) == 0 {
			t.Errorf("Service port %s targets %s, no container port", p.Name, p.TargetPort.String())
		}
		if p.TargetPort.String() == "admin" || resolvePort(p.TargetPort, ports) == ports["admin"] {
			t.Errorf("Service port %s exposes the admin port", p.Name)
		}
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		got[p.TargetPort.String()] = ap
	}
	if got["grpc"] != "grpc" || got["http"] != "http" {
		t.Errorf("Service ports (target → appProtocol) %v, want grpc → grpc and http → http", got)
	}
}

func checkPDB(t *testing.T, r rendered, d *appsv1.Deployment) {
	pdb, ok := r.byName["PodDisruptionBudget/mediagw"].(*policyv1.PodDisruptionBudget)
	if !ok {
		return
	}
	sel, err := metaSelector(pdb.Spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget does not select mediagw's pods")
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 || pdb.Spec.MaxUnavailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("the PodDisruptionBudget's maxUnavailable %v leaves no replica, or blocks every drain", pdb.Spec.MaxUnavailable)
	}
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return labels.Nothing(), nil
	}
	return labels.SelectorFromSet(m), nil
}

// checkNetworkPolicy: the admin port is reachable from the monitoring
// namespace only; gRPC and REST are allowed.
func checkNetworkPolicy(t *testing.T, r rendered, d *appsv1.Deployment, ports map[string]int32) {
	np, ok := r.byName["NetworkPolicy/mediagw"].(*networkingv1.NetworkPolicy)
	if !ok {
		return
	}
	sel, _ := metaSelector(np.Spec.PodSelector.MatchLabels)
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Fatal("NetworkPolicy mediagw does not select mediagw's pods")
	}
	allowed := map[int32][]networkingv1.NetworkPolicyPeer{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("an ingress rule allows every port, the admin port too")
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				t.Errorf("an ingress rule allows every port, the admin port too")
				continue
			}
			n := resolvePort(*p.Port, ports)
			if len(rule.From) == 0 {
				allowed[n] = append(allowed[n], networkingv1.NetworkPolicyPeer{}) // from anywhere
			}
			allowed[n] = append(allowed[n], rule.From...)
		}
	}
	for _, name := range []string{"grpc", "http"} {
		if len(allowed[ports[name]]) == 0 {
			t.Errorf("NetworkPolicy mediagw lets no caller reach %s", name)
		}
	}
	admin := allowed[ports["admin"]]
	if len(admin) == 0 {
		t.Errorf("NetworkPolicy mediagw lets no Prometheus reach the admin port")
	}
	for _, peer := range admin {
		ns := peer.NamespaceSelector
		if peer.PodSelector != nil || peer.IPBlock != nil || ns == nil || len(ns.MatchExpressions) != 0 ||
			len(ns.MatchLabels) != 1 || ns.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
			t.Errorf("the admin port is open to %+v, not only to the monitoring namespace", peer)
		}
	}
}
