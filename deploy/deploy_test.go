package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/runtime"
)

// exported lists the metric families the runtime registers.
func exported(t *testing.T) map[string]bool {
	reg := prometheus.NewRegistry()
	m := runtime.NewMetrics(reg)
	// Touch every vector so that Gather reports each family.
	m.TxnResults.WithLabelValues("p", "committed")
	m.PrepareFailures.WithLabelValues("p")
	m.CommitDuration.WithLabelValues("p")
	for _, v := range []*prometheus.CounterVec{m.RecordsIn, m.RecordsOut, m.RecordsFailed} {
		v.WithLabelValues("p", "0")
	}
	m.PluginCalls.WithLabelValues("p", "x")
	m.PluginTraps.WithLabelValues("p", "x", "trap")
	m.CallDuration.WithLabelValues("p")
	for _, g := range []*prometheus.GaugeVec{m.QueueDepth, m.QueueDepthMax, m.Credits, m.DLQSize, m.DLQFull} {
		g.WithLabelValues("p")
	}
	for _, g := range []*prometheus.GaugeVec{m.BatchSize, m.ConsumerLag, m.LagVelocity} {
		g.WithLabelValues("p", "0")
	}
	m.DLQAdded.WithLabelValues("p")
	m.DedupHits.WithLabelValues("p")
	m.Watermark.WithLabelValues("p")
	m.WatermarkLag.WithLabelValues("p", "0")
	m.LateRecords.WithLabelValues("p", "drop")
	m.Swaps.WithLabelValues("p", "swap")
	m.TransientFailures.WithLabelValues("p")
	m.Rebalances.WithLabelValues("p", "assigned")
	m.AssignedPartitions.WithLabelValues("p")
	m.RestoredRecords.WithLabelValues("p", "0")
	m.RestoreLag.WithLabelValues("p", "0")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	return out
}

var metricName = regexp.MustCompile(`helios_[a-z_]+`)

// checkNames fails for any helios_ metric in expr that the runtime does not
// export (histogram series suffixes allowed).
func checkNames(t *testing.T, where, expr string, have map[string]bool) {
	for _, n := range metricName.FindAllString(expr, -1) {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(n, suf); ok && have[trimmed] {
				base = trimmed
			}
		}
		if !have[base] {
			t.Errorf("%s uses %s, which the runtime does not export", where, n)
		}
	}
}

func TestAlertRules(t *testing.T) {
	promtool := testutil.RequireTool(t, "promtool", "apt-get install prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
	b, _ := os.ReadFile("alerts.yml")
	have := exported(t)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "description") && !strings.Contains(line, "summary") {
			checkNames(t, "alerts.yml", line, have)
		}
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if len(d.Panels) < 8 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	have := exported(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			checkNames(t, "panel "+p.Title, tg.Expr, have)
		}
	}
}

// TestReadmeMetrics checks that the deployment guide names only metrics the
// runtime exports, so that its checklist and troubleshooting stay true.
func TestReadmeMetrics(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	checkNames(t, "deploy/README.md", string(b), exported(t))
}
