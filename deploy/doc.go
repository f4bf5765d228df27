// Package deploy holds deployment assets (Prometheus alert rules and a
// Grafana dashboard) and the tests that keep them valid against the metrics
// the runtime exports.
package deploy
