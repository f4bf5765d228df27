package deploy

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification compose.yaml uses;
// decoding is strict, so a misspelt key fails the test.
type composeFile struct {
	Name     string
	Services map[string]struct {
		Image       string
		Command     []string
		Entrypoint  []string
		Ports       []string
		Volumes     []string
		Environment map[string]string
		Healthcheck *struct {
			Test              []string
			Interval, Timeout string
			Retries           int
		}
		DependsOn       json.RawMessage `json:"depends_on"`
		Restart         string
		StopGracePeriod string `json:"stop_grace_period"`
	}
	Volumes map[string]*struct{}
}

type promConfig struct {
	Global        map[string]string
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string                       `json:"job_name"`
		StaticConfigs []struct{ Targets []string } `json:"static_configs"`
	} `json:"scrape_configs"`
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// flagValue is --name=value or --name value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// TestCompose checks deploy/compose: the services and how they connect
// (broker address and topic, scrape targets allowed by the admin API's Host
// check, alert rules and dashboard mounted where Prometheus and Grafana look),
// and that every variable set on a helios service is one the CLI reads.
func TestCompose(t *testing.T) {
	cliVars := cliEnv(t)
	dir := "compose"
	var c composeFile
	readYAML(t, filepath.Join(dir, "compose.yaml"), &c)
	for _, s := range []string{"redpanda", "topics", "helios", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml has no %s service", s)
		}
	}
	// Every bind-mounted file exists; every named volume is declared.
	mounts := map[string]map[string]string{} // service -> target -> source
	for name, s := range c.Services {
		mounts[name] = map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("%s: volume %q", name, v)
			}
			src, dst := parts[0], parts[1]
			mounts[name][dst] = src
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, src)
			}
		}
	}

	// helios: the image make image builds, its data on a volume, only
	// variables the CLI reads, a broker and topic that exist.
	var helios []string
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "helios-wasm") {
			continue
		}
		helios = append(helios, name)
		if s.Image != "helios-wasm:examples" {
			t.Errorf("%s: image %s; make image builds helios-wasm and helios-wasm:examples", name, s.Image)
		}
		if src, ok := mounts[name]["/data"]; !ok || strings.HasPrefix(src, ".") {
			t.Errorf("%s: /data must be a named volume (got %q)", name, src)
		}
		if !slices.Contains(s.Ports, "8080:8080") && len(helios) == 1 {
			t.Errorf("%s: ports %v, want 8080:8080 (the admin API)", name, s.Ports)
		}
		checkEnv(t, "compose.yaml service "+name, sortedKeys(s.Environment), cliVars, nil)
		if s.Command[0] != "run" {
			t.Fatalf("%s: command %v, want run", name, s.Command)
		}
		brokers := s.Environment["HELIOS_KAFKA_BROKERS"]
		host, port, err := net.SplitHostPort(brokers)
		if err != nil {
			t.Fatalf("%s: HELIOS_KAFKA_BROKERS %q", name, brokers)
		}
		if _, ok := c.Services[host]; !ok || !strings.Contains(strings.Join(c.Services[host].Command, " "), "://"+host+":"+port) {
			t.Errorf("%s: broker %s is not a service advertising that address", name, brokers)
		}
		input, _ := flagValue(s.Command, "input")
		topic, ok := strings.CutPrefix(input, "kafka:")
		if !ok || !slices.Contains(c.Services["topics"].Entrypoint, topic) {
			t.Errorf("%s: --input %s, but the topics service creates %v", name, input, c.Services["topics"].Entrypoint)
		}
		plugin, _ := flagValue(s.Command, "plugin")
		if m := regexp.MustCompile(`^/plugins/go/([a-z]+)\.wasm$`).FindStringSubmatch(plugin); m == nil || !bakedExample(t, m[1]) {
			t.Errorf("%s: --plugin %s is not an example the helios-wasm:examples image bakes in", name, plugin)
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d < 30*time.Second {
			t.Errorf("%s: stop_grace_period %q: give SIGTERM time to commit the batch in flight (at least 30s)", name, s.StopGracePeriod)
		}
		allowed := strings.Split(s.Environment["HELIOS_ADMIN_ALLOWED_HOSTS"], ",")
		for _, must := range []string{name + ":8080", "127.0.0.1:8080"} { // Prometheus; the image's health check
			if !slices.Contains(allowed, must) {
				t.Errorf("%s: HELIOS_ADMIN_ALLOWED_HOSTS %v lacks %s (421 otherwise)", name, allowed, must)
			}
		}
	}
	if len(helios) == 0 {
		t.Fatal("no helios service")
	}

	// Prometheus scrapes every helios service and loads the alert rules.
	var prom promConfig
	readYAML(t, filepath.Join(dir, "prometheus.yml"), &prom)
	pm := mounts["prometheus"]
	if pm["/etc/prometheus/prometheus.yml"] != "./prometheus.yml" {
		t.Errorf("prometheus.yml is not mounted as Prometheus's config: %v", pm)
	}
	for _, rf := range prom.RuleFiles {
		if filepath.Clean(filepath.Join(dir, pm[rf])) != "alerts.yml" {
			t.Errorf("rule file %s is not deploy/alerts.yml (mounted from %q)", rf, pm[rf])
		}
	}
	if len(prom.RuleFiles) != 1 {
		t.Errorf("rule_files %v: want deploy/alerts.yml", prom.RuleFiles)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, h := range helios {
		if !slices.Contains(targets, h+":8080") {
			t.Errorf("Prometheus does not scrape %s:8080 (targets %v)", h, targets)
		}
	}

	// Grafana: the datasource is this Prometheus, the dashboard is
	// deploy/grafana-dashboard.json in the folder the provider reads.
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name, Type, UID, Access, URL string
			IsDefault                    bool `json:"isDefault"`
		}
	}
	readYAML(t, filepath.Join(dir, "grafana", "datasources.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !slices.Contains(c.Services["prometheus"].Ports, "9090:9090") {
		t.Errorf("Grafana datasource %+v does not point at the prometheus service", ds.Datasources)
	}
	var dp struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name, Type      string
			DisableDeletion bool `json:"disableDeletion"`
			Options         struct{ Path string }
		}
	}
	readYAML(t, filepath.Join(dir, "grafana", "dashboards.yaml"), &dp)
	gm := mounts["grafana"]
	found := false
	for dst, src := range gm {
		if filepath.Clean(filepath.Join(dir, src)) == "grafana-dashboard.json" && len(dp.Providers) == 1 && filepath.Dir(dst) == dp.Providers[0].Options.Path {
			found = true
		}
	}
	if !found {
		t.Errorf("deploy/grafana-dashboard.json is not mounted in the provider's folder (mounts %v, providers %+v)", gm, dp.Providers)
	}
	for _, p := range []string{"grafana/datasources.yaml", "grafana/dashboards.yaml"} {
		if !slices.Contains(sortedKeys(invert(gm)), "./"+p) {
			t.Errorf("%s is not mounted into grafana", p)
		}
	}
}

// bakedExample reports whether make image copies example NAME into the image.
func bakedExample(t *testing.T, name string) bool {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cp \$\(BUILD\)/plugins/go/\{([a-z,]+)\}\.wasm \$\(IMAGE_CTX\)/plugins/go/`).FindSubmatch(mk)
	return m != nil && slices.Contains(strings.Split(string(m[1]), ","), name)
}

func invert(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[v] = k
	}
	return out
}
