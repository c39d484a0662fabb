// Package deploy holds the checks of what an operator deploys: the
// Kubernetes manifests (kubernetes/), the Prometheus rules (prometheus/) and
// the Grafana dashboard (grafana/). It is a module of its own so that
// mediagw's go.mod stays free of Kubernetes; its tests build the real
// mediagw binary from the parent module and check the files against it.
package deploy
