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
// (broker address and topics, scrape targets allowed by the admin API's
// Host check, alert rules and dashboard mounted where Prometheus and Grafana
// look), that the helios services are instances of one kafka: -> kafka:
// pipeline (one consumer group, a data volume and an instance id each, the
// admin API on distinct host ports, a stop grace period covering the
// SIGTERM shutdown), and that every variable set on a helios service is one
// the CLI reads.
func TestCompose(t *testing.T) {
	cliVars := cliEnv(t)
	dir := "compose"
	var c composeFile
	readYAML(t, filepath.Join(dir, "compose.yaml"), &c)
	for _, s := range []string{"redpanda", "topics", "helios-1", "helios-2", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml has no %s service", s)
		}
	}
	// Every bind-mounted file exists; every named volume is declared; no
	// two services publish the same host port.
	mounts := map[string]map[string]string{} // service -> target -> source
	hostPorts := map[string]string{}         // host port -> service
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
		for _, p := range s.Ports {
			host, _, _ := strings.Cut(p, ":")
			if other, ok := hostPorts[host]; ok {
				t.Errorf("%s and %s both publish host port %s", other, name, host)
			}
			hostPorts[host] = name
		}
	}
	topics := c.Services["topics"].Entrypoint

	// helios: the image make image builds, only variables the CLI reads, a
	// broker and topics that exist; every instance runs the same kafka: ->
	// kafka: pipeline with its own data volume, instance id and host port.
	var helios []string
	var command []string
	dataVolumes, instanceIDs := map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !strings.HasPrefix(s.Image, "helios-wasm") {
			continue
		}
		helios = append(helios, name)
		if s.Image != "helios-wasm:examples" {
			t.Errorf("%s: image %s; make image builds helios-wasm and helios-wasm:examples", name, s.Image)
		}
		if len(s.Command) == 0 || s.Command[0] != "run" {
			t.Fatalf("%s: command %v, want run", name, s.Command)
		}
		if command == nil {
			command = s.Command
		} else if !slices.Equal(command, s.Command) {
			t.Errorf("%s: command %v differs from %s's %v: the instances of a fleet run the same pipeline", name, s.Command, helios[0], command)
		}
		src, ok := mounts[name]["/data"]
		if !ok || strings.HasPrefix(src, ".") {
			t.Errorf("%s: /data must be a named volume (got %q)", name, src)
		} else if other, dup := dataVolumes[src]; dup {
			t.Errorf("%s and %s share the data volume %s: each instance needs its own data directory", other, name, src)
		}
		dataVolumes[src] = name
		checkEnv(t, "compose.yaml service "+name, sortedKeys(s.Environment), cliVars, nil)
		id := s.Environment["HELIOS_KAFKA_INSTANCE_ID"]
		if id == "" {
			t.Errorf("%s: set HELIOS_KAFKA_INSTANCE_ID (static group membership and the transactional id, stable across container re-creations)", name)
		} else if other, dup := instanceIDs[id]; dup {
			t.Errorf("%s and %s share HELIOS_KAFKA_INSTANCE_ID %s: each instance needs its own", other, name, id)
		}
		instanceIDs[id] = name

		brokers := s.Environment["HELIOS_KAFKA_BROKERS"]
		host, port, err := net.SplitHostPort(brokers)
		if err != nil {
			t.Fatalf("%s: HELIOS_KAFKA_BROKERS %q", name, brokers)
		}
		if _, ok := c.Services[host]; !ok || !strings.Contains(strings.Join(c.Services[host].Command, " "), "://"+host+":"+port) {
			t.Errorf("%s: broker %s is not a service advertising that address", name, brokers)
		}
		for _, flag := range []string{"input", "output"} {
			v, _ := flagValue(s.Command, flag)
			topic, ok := strings.CutPrefix(v, "kafka:")
			if !ok || !slices.Contains(topics, topic) {
				t.Errorf("%s: --%s %s: want kafka:TOPIC with a topic the topics service creates (%v); only kafka: -> kafka: pipelines share partitions", name, flag, v, topics)
			}
		}
		if _, ok := flagValue(s.Command, "name"); !ok {
			t.Errorf("%s: no --name: the instances of a fleet share it (it names the consumer group)", name)
		}
		plugin, _ := flagValue(s.Command, "plugin")
		if m := regexp.MustCompile(`^/plugins/go/([a-z]+)\.wasm$`).FindStringSubmatch(plugin); m == nil || !bakedExample(t, m[1]) {
			t.Errorf("%s: --plugin %s is not an example the helios-wasm:examples image bakes in", name, plugin)
		}

		// SIGTERM commits the batch in flight (up to --batch-timeout of
		// operator time), then leaves the group: the grace period covers
		// that with 30s to commit.
		bt := 10 * time.Second // run's default
		if v, ok := flagValue(s.Command, "batch-timeout"); ok {
			if bt, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: --batch-timeout %q", name, v)
			}
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d < bt+30*time.Second {
			t.Errorf("%s: stop_grace_period %q: give SIGTERM time to commit the batch in flight and leave the group (--batch-timeout %s + 30s)", name, s.StopGracePeriod, bt)
		}

		// The admin API: container port 8080 on a host port of its own;
		// allowed Host values for Prometheus, the health check and the
		// host's localhost:PORT.
		var published string
		for _, p := range s.Ports {
			if h, ctr, ok := strings.Cut(p, ":"); ok && ctr == "8080" {
				published = h
			}
		}
		if published == "" {
			t.Errorf("%s: ports %v do not publish the admin API (container port 8080)", name, s.Ports)
		}
		allowed := strings.Split(s.Environment["HELIOS_ADMIN_ALLOWED_HOSTS"], ",")
		for _, must := range []string{name + ":8080", "127.0.0.1:8080", "localhost:" + published} { // Prometheus; the image's health check; the walkthrough's commands
			if !slices.Contains(allowed, must) {
				t.Errorf("%s: HELIOS_ADMIN_ALLOWED_HOSTS %v lacks %s (421 otherwise)", name, allowed, must)
			}
		}
	}
	if len(helios) < 2 {
		t.Fatalf("helios services %v: want at least two instances in one consumer group", helios)
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
