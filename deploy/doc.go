// Package deploy holds deployment assets (Prometheus alert rules, a Grafana
// dashboard, a Docker Compose stack and Kubernetes manifests; the image is
// the repository's Dockerfile) and the tests that keep them valid: against
// the metrics the runtime exports, the environment variables the CLI reads
// (parsed from its --help), the Kubernetes API types, and the admin
// server's endpoints and Host check. See README.md here.
package deploy
