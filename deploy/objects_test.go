package deploy

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest: its kind and its k8s.io/api value.
type object struct {
	kind string
	obj  metav1.Object
}

func (o object) meta() metav1.Object { return o.obj }

// kinds are the kinds the manifests use, with the apiVersion each must
// carry and its k8s.io/api type.
var kinds = map[string]struct {
	apiVersion string
	new        func() metav1.Object
}{
	"Namespace":           {"v1", func() metav1.Object { return &corev1.Namespace{} }},
	"ServiceAccount":      {"v1", func() metav1.Object { return &corev1.ServiceAccount{} }},
	"Service":             {"v1", func() metav1.Object { return &corev1.Service{} }},
	"ConfigMap":           {"v1", func() metav1.Object { return &corev1.ConfigMap{} }},
	"Secret":              {"v1", func() metav1.Object { return &corev1.Secret{} }},
	"Deployment":          {"apps/v1", func() metav1.Object { return &appsv1.Deployment{} }},
	"StatefulSet":         {"apps/v1", func() metav1.Object { return &appsv1.StatefulSet{} }},
	"PodDisruptionBudget": {"policy/v1", func() metav1.Object { return &policyv1.PodDisruptionBudget{} }},
	"NetworkPolicy":       {"networking.k8s.io/v1", func() metav1.Object { return &networkingv1.NetworkPolicy{} }},
}

// decodeObject decodes one YAML document strictly into the type of its kind.
func decodeObject(doc []byte) (object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, err
	}
	k, ok := kinds[tm.Kind]
	if !ok {
		return object{}, fmt.Errorf("kind %q is not one the manifests are checked for", tm.Kind)
	}
	if tm.APIVersion != k.apiVersion {
		return object{}, fmt.Errorf("%s has apiVersion %q, want %q", tm.Kind, tm.APIVersion, k.apiVersion)
	}
	o := k.new()
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if o.GetName() == "" {
		return object{}, fmt.Errorf("%s has no name", tm.Kind)
	}
	return object{kind: tm.Kind, obj: o}, nil
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// splitDocs splits a YAML stream into its non-empty documents.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSep.Split(string(data), -1) {
		b := bytes.TrimSpace([]byte(d))
		if len(b) == 0 || isComments(b) {
			continue
		}
		docs = append(docs, b)
	}
	return docs
}

func isComments(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// rendered indexes rendered objects by "Kind/name", and the generated
// ConfigMaps and Secrets also by the name before kustomize's hash suffix.
type rendered struct {
	byName map[string]metav1.Object
}

var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

func index(t *testing.T, objs []object) rendered {
	t.Helper()
	r := rendered{byName: map[string]metav1.Object{}}
	for _, o := range objs {
		key := o.kind + "/" + o.meta().GetName()
		if r.byName[key] != nil {
			t.Errorf("%s is rendered twice", key)
		}
		r.byName[key] = o.obj
	}
	return r
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, ok := r.byName["Deployment/mediagw"].(*appsv1.Deployment)
	if !ok {
		t.Fatal("no Deployment mediagw")
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment mediagw has %d containers, want 1", n)
	}
	return d
}

func (r rendered) configMap(name string) *corev1.ConfigMap {
	c, _ := r.byName["ConfigMap/"+name].(*corev1.ConfigMap)
	return c
}

func (r rendered) secret(name string) *corev1.Secret {
	s, _ := r.byName["Secret/"+name].(*corev1.Secret)
	return s
}
