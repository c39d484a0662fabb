package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const overlay = "kubernetes/overlays/example"

// TestManifestsDecodeStrictly decodes every YAML document under
// kubernetes/ with the k8s.io/api type of its kind (kustomization files
// with kustomize's), refusing unknown fields: a misspelt field fails here,
// not at kubectl apply.
func TestManifestsDecodeStrictly(t *testing.T) {
	n := 0
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		if strings.Contains(path, string(filepath.Separator)+"files"+string(filepath.Separator)) ||
			strings.Contains(path, string(filepath.Separator)+"secrets"+string(filepath.Separator)) {
			return nil // data of generated ConfigMaps and Secrets, checked by the binary
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.Base(path) == "kustomization.yaml" {
			var k types.Kustomization
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			n++
			return nil
		}
		for i, doc := range splitDocs(data) {
			if _, err := decodeObject(doc); err != nil {
				t.Errorf("%s (document %d): %v", path, i+1, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 12 {
		t.Errorf("decoded %d documents; the manifests have more", n)
	}
}

// render builds a kustomization as `kubectl apply -k` would (kustomize's
// own library) and decodes every object strictly.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	for i, doc := range splitDocs(out) {
		o, err := decodeObject(doc)
		if err != nil {
			t.Fatalf("rendered document %d: %v\n%s", i+1, err, doc)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestOverlayRenders renders the example overlay and checks the objects
// an operator expects, and the invariants that matter for mediagw.
func TestOverlayRenders(t *testing.T) {
	objs := render(t, overlay)
	r := index(t, objs)
	want := []string{
		"Namespace/media", "ServiceAccount/mediagw", "Deployment/mediagw", "Service/mediagw",
		"PodDisruptionBudget/mediagw", "NetworkPolicy/mediagw", "StatefulSet/mediagw-redis",
		"Service/mediagw-redis", "NetworkPolicy/mediagw-redis",
	}
	for _, w := range want {
		if r.byName[w] == nil {
			t.Errorf("the overlay renders no %s", w)
		}
	}
	for _, o := range objs {
		if ns := o.meta().GetNamespace(); o.kind != "Namespace" && ns != "media" {
			t.Errorf("%s/%s is in namespace %q, not media", o.kind, o.meta().GetName(), ns)
		}
	}
	checkDeployment(t, r)
}

// TestBaseRenders: the base alone renders and names the ConfigMap and
// Secrets an overlay must supply.
func TestBaseRenders(t *testing.T) {
	r := index(t, render(t, "kubernetes/base"))
	d := r.deployment(t)
	var refs []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			refs = append(refs, "ConfigMap/"+v.ConfigMap.Name)
		case v.Secret != nil:
			refs = append(refs, "Secret/"+v.Secret.SecretName)
		}
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs = append(refs, "Secret/"+e.ValueFrom.SecretKeyRef.Name)
		}
	}
	got := strings.Join(refs, " ")
	if got != "ConfigMap/mediagw-config Secret/mediagw-accounts Secret/mediagw-secrets-key Secret/mediagw-redis Secret/mediagw-x" {
		t.Errorf("the base refers to %s", got)
	}
	doc, err := os.ReadFile("kubernetes/base/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		if name := ref[strings.Index(ref, "/")+1:]; !bytes.Contains(doc, []byte(name)) {
			t.Errorf("kubernetes/base/kustomization.yaml does not tell overlays to supply %s", ref)
		}
	}
}

// args parses a container's args as mediagw's flag package would:
// --name=value, --name value, or a boolean --name.
func args(t *testing.T, known map[string]bool, list []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for i := 0; i < len(list); i++ {
		a := list[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("argument %q is not a flag (mediagw takes no positional arguments)", a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := known[name]
		if !ok {
			t.Errorf("flag --%s is not one the mediagw binary accepts (mediagw -h)", name)
			continue
		}
		if takesValue && !hasValue {
			if i+1 == len(list) {
				t.Errorf("flag --%s has no value", name)
				continue
			}
			i++
			value = list[i]
		}
		if _, dup := got[name]; dup {
			t.Errorf("flag --%s is given twice", name)
		}
		got[name] = value
	}
	return got
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("address %q is loopback: nothing outside the pod reaches it", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return u
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
