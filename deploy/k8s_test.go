package deploy

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/heliosdb/helios-wasm/internal/admin"
)

// serviceMonitor is the part of prometheus-operator's ServiceMonitor
// (monitoring.coreos.com/v1) used here, decoded strictly like the rest
// (the operator's Go module is not a dependency for one CRD).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests is deploy/k8s decoded into the Kubernetes API types.
type manifests struct {
	sts     *appsv1.StatefulSet
	svc     *corev1.Service
	cm      *corev1.ConfigMap
	pdb     *policyv1.PodDisruptionBudget
	sm      *serviceMonitor
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	decoded int
}

// decodeManifests reads every YAML document under deploy/k8s strictly
// (an unknown or misplaced field fails) into its API type.
func decodeManifests(t *testing.T) manifests {
	t.Helper()
	var m manifests
	files, _ := filepath.Glob("k8s/*.yaml")
	more, _ := filepath.Glob("k8s/*/*.yaml")
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var into any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				m.sts = &appsv1.StatefulSet{}
				into = m.sts
			case "v1 Service":
				m.svc = &corev1.Service{}
				into = m.svc
			case "v1 ConfigMap":
				m.cm = &corev1.ConfigMap{}
				into = m.cm
			case "policy/v1 PodDisruptionBudget":
				m.pdb = &policyv1.PodDisruptionBudget{}
				into = m.pdb
			case "monitoring.coreos.com/v1 ServiceMonitor":
				m.sm = &serviceMonitor{}
				into = m.sm
			case "autoscaling/v2 HorizontalPodAutoscaler":
				m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
				into = m.hpa
			default:
				t.Fatalf("%s: unexpected %s %s", f, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
				t.Fatalf("%s (%s): %v", f, tm.Kind, err)
			}
			m.decoded++
		}
	}
	if m.sts == nil || m.svc == nil || m.cm == nil || m.pdb == nil || m.sm == nil || m.hpa == nil {
		t.Fatalf("deploy/k8s lacks a manifest: %+v", m)
	}
	return m
}

func TestK8sStrictDecodeRejectsUnknownFields(t *testing.T) {
	var sts appsv1.StatefulSet
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replica: 1\n"), &sts)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

var expansion = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestK8sManifests checks deploy/k8s's invariants: names and selectors
// connect, probes and the scrape hit endpoints the admin server serves and
// pass its Host check, ports match the flags, env names are ones the CLI
// reads (or are expanded into its arguments), the replicas form a fleet of
// one kafka: -> kafka: pipeline with the pod name as instance id, the grace
// period covers the commit and group leave on SIGTERM, and resources follow
// the deployment guide.
func TestK8sManifests(t *testing.T) {
	cliVars := cliEnv(t)
	m := decodeManifests(t)
	sts, svc := m.sts, m.svc
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	labels := sts.Spec.Template.Labels
	sel := func(what string, s map[string]string) {
		for k, v := range s {
			if labels[k] != v {
				t.Errorf("%s selects %s=%s, which the pods do not carry (%v)", what, k, v, labels)
			}
		}
		if len(s) == 0 {
			t.Errorf("%s selects nothing", what)
		}
	}
	sel("StatefulSet", sts.Spec.Selector.MatchLabels)
	sel("Service", svc.Spec.Selector)
	sel("PodDisruptionBudget", m.pdb.Spec.Selector.MatchLabels)
	for k, v := range m.sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the Service does not carry", k, v)
		}
	}
	if sts.Spec.ServiceName != svc.Name || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q: want the headless Service %q (clusterIP None, got %q)", sts.Spec.ServiceName, svc.Name, svc.Spec.ClusterIP)
	}
	// The fleet: replicas of one kafka: -> kafka: pipeline share the
	// input's partitions (with another output each would read them all).
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 2 {
		t.Fatalf("replicas %s: want a fleet of at least 2 instances sharing the input's partitions", deref(sts.Spec.Replicas))
	}
	for _, k := range []string{"PIPELINE_INPUT", "PIPELINE_OUTPUT"} {
		if !strings.HasPrefix(m.cm.Data[k], "kafka:") {
			t.Errorf("ConfigMap %s %q: want kafka:TOPIC; only a kafka: -> kafka: pipeline shares partitions between replicas", k, m.cm.Data[k])
		}
	}
	if m.pdb.Spec.MaxUnavailable == nil || m.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", m.pdb.Spec.MaxUnavailable)
	}
	if h := m.hpa.Spec.ScaleTargetRef; h.Kind != "StatefulSet" || h.Name != sts.Name || h.APIVersion != "apps/v1" {
		t.Errorf("HPA scales %+v, not the StatefulSet", h)
	}
	if mn := m.hpa.Spec.MinReplicas; mn == nil || *mn < 2 || *mn > *sts.Spec.Replicas || m.hpa.Spec.MaxReplicas < *sts.Spec.Replicas {
		t.Errorf("HPA replicas %s..%d: want at least 2 and the StatefulSet's %d within", deref(mn), m.hpa.Spec.MaxReplicas, *sts.Spec.Replicas)
	}
	if mt := m.hpa.Spec.Metrics; len(mt) != 1 || mt[0].Pods == nil || mt[0].Pods.Metric.Name != "helios_consumer_lag" {
		t.Errorf("HPA metrics %+v: want the Pods metric helios_consumer_lag", mt)
	} else if have := exported(t); !have[mt[0].Pods.Metric.Name] {
		t.Errorf("HPA scales on %s, which the runtime does not export", mt[0].Pods.Metric.Name)
	}

	// Environment: HELIOS_* are read by the CLI; others must be expanded
	// into the arguments or another variable. Values from the ConfigMap
	// name keys it has, and it has no key nobody reads.
	env := map[string]string{}
	expanded := map[string]bool{}
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		for _, x := range expansion.FindAllStringSubmatch(a, -1) {
			expanded[x[1]] = true
		}
	}
	usedKeys := map[string]bool{}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		env[e.Name] = e.Value
		for _, x := range expansion.FindAllStringSubmatch(e.Value, -1) {
			expanded[x[1]] = true
		}
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			if ref.Name != m.cm.Name {
				t.Errorf("%s comes from ConfigMap %s, not %s", e.Name, ref.Name, m.cm.Name)
			} else if _, ok := m.cm.Data[ref.Key]; !ok {
				t.Errorf("%s comes from key %s, which ConfigMap %s lacks", e.Name, ref.Key, m.cm.Name)
			}
			usedKeys[ref.Key] = true
		}
	}
	checkEnv(t, "StatefulSet", names, cliVars, expanded)
	// A HELIOS_ name is the CLI's even where it is also expanded, and so is
	// a ConfigMap key named like one.
	for _, n := range append(names, sortedKeys(m.cm.Data)...) {
		if strings.HasPrefix(n, "HELIOS_") && !cliVars[n] {
			t.Errorf("%s is not a variable the CLI reads (it reads %s)", n, strings.Join(sortedKeys(cliVars), ", "))
		}
	}
	// The instance id is the pod name: unique among the replicas, stable
	// across a pod's restarts and reschedules.
	var idFromPodName bool
	for _, e := range c.Env {
		if e.Name == "HELIOS_KAFKA_INSTANCE_ID" {
			idFromPodName = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}
	}
	if !idFromPodName {
		t.Error("HELIOS_KAFKA_INSTANCE_ID must come from the pod name (valueFrom fieldRef metadata.name): a static group member and transactional id per pod")
	}
	for k := range m.cm.Data {
		if !usedKeys[k] {
			t.Errorf("ConfigMap key %s reaches no container", k)
		}
	}
	for x := range expanded {
		if _, ok := env[x]; !ok && !slices.Contains(names, x) {
			t.Errorf("$(%s) is expanded but not defined", x)
		}
	}
	var tokenFromSecret bool
	for _, e := range c.Env {
		if e.Name == "HELIOS_ADMIN_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.Value == "" {
			tokenFromSecret = true
		}
	}
	if !tokenFromSecret {
		t.Error("HELIOS_ADMIN_TOKEN must come from a Secret")
	}

	// Ports: the admin listener, the named container port, the Service and
	// the ServiceMonitor agree.
	adminAddr := env["HELIOS_ADMIN"]
	adminPort := adminAddr[strings.LastIndex(adminAddr, ":")+1:]
	if !strings.HasPrefix(adminAddr, "0.0.0.0:") {
		t.Errorf("HELIOS_ADMIN %q: probes and scrapes come from outside the pod; listen on 0.0.0.0", adminAddr)
	}
	portOf := func(p intstr.IntOrString) string {
		if p.Type == intstr.Int {
			return strconv.Itoa(p.IntValue())
		}
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return strconv.Itoa(int(cp.ContainerPort))
			}
		}
		t.Errorf("port %q is not a container port", p.StrVal)
		return ""
	}
	var smPort string
	for _, sp := range svc.Spec.Ports {
		if sp.Name == m.sm.Spec.Endpoints[0].Port {
			smPort = portOf(sp.TargetPort)
		}
	}
	if smPort != adminPort {
		t.Errorf("the ServiceMonitor scrapes port %q, the admin API listens on %s", smPort, adminPort)
	}

	// Probes and the scrape, sent as the kubelet and Prometheus send them
	// (Host: POD_IP:PORT), to the admin server configured as the pod
	// configures it.
	podIP := "10.1.2.3"
	allowed := expansion.ReplaceAllStringFunc(env["HELIOS_ADMIN_ALLOWED_HOSTS"], func(x string) string {
		if x == "$(POD_IP)" {
			return podIP
		}
		return x
	})
	srv, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Token: "t", AllowedHosts: strings.Split(allowed, ","), Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	get := func(path, port string) int {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr()+path, nil)
		req.Host = podIP + ":" + port
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	probes := []struct {
		name  string
		p     *corev1.Probe
		path  string
		codes []int // before and after the pipeline is ready
	}{
		{"liveness", c.LivenessProbe, "/healthz", []int{200, 200}},
		{"readiness", c.ReadinessProbe, "/readyz", []int{503, 200}},
		{"startup", c.StartupProbe, "/healthz", []int{200, 200}},
	}
	for i, ready := range []bool{false, true} {
		srv.SetReady(ready)
		for _, pr := range probes {
			if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || len(pr.p.HTTPGet.HTTPHeaders) != 0 {
				t.Fatalf("%s probe %+v: want httpGet %s", pr.name, pr.p, pr.path)
			}
			port := portOf(pr.p.HTTPGet.Port)
			if port != adminPort {
				t.Errorf("%s probe on port %s, admin API on %s", pr.name, port, adminPort)
			}
			if got := get(pr.path, port); got != pr.codes[i] {
				t.Errorf("%s probe (ready=%v): %d, want %d", pr.name, ready, got, pr.codes[i])
			}
		}
		if got := get(m.sm.Spec.Endpoints[0].Path, smPort); got != 200 {
			t.Errorf("scrape of %s: %d", m.sm.Spec.Endpoints[0].Path, got)
		}
	}

	// Shutdown: SIGTERM commits the batch in flight, which may run up to
	// --batch-timeout, then leaves the consumer group; the grace period
	// must cover it with room to commit and leave.
	bt, _ := flagValue(c.Args, "batch-timeout")
	d, err := time.ParseDuration(bt)
	if err != nil {
		t.Fatalf("--batch-timeout %q: set it explicitly: the grace period depends on it", bt)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < d+30*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v does not cover --batch-timeout %s plus 30s to commit and leave the group", g, d)
	}

	// Resources: the deployment guide's requests and limits; --memory-limit
	// inside the container's limit.
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")},
	}
	for _, rl := range []struct{ got, want corev1.ResourceList }{{c.Resources.Requests, want.Requests}, {c.Resources.Limits, want.Limits}} {
		for k, v := range rl.want {
			if g := rl.got[k]; g.Cmp(v) != 0 {
				t.Errorf("resource %s: %s, want %s", k, g.String(), v.String())
			}
		}
	}
	ml, _ := flagValue(c.Args, "memory-limit")
	mib, err := strconv.ParseInt(ml, 10, 64)
	lim := c.Resources.Limits[corev1.ResourceMemory]
	if err != nil || mib<<20 >= lim.Value() || mib<<20 < lim.Value()/2 {
		t.Errorf("--memory-limit %q MiB: want between half and all of the container's %s (Pebble and wazero live outside the Go heap)", ml, lim.String())
	}

	// Storage: the data directory on the claim, below its root; plugins
	// read-only under /plugins.
	mountOf := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mountOf[vm.Name] = vm
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatal("want one volumeClaimTemplate")
	}
	data := mountOf[sts.Spec.VolumeClaimTemplates[0].Name]
	if dd := env["HELIOS_DATA_DIR"]; data.MountPath == "" || !strings.HasPrefix(dd, data.MountPath+"/") {
		t.Errorf("HELIOS_DATA_DIR %q must be a folder below the claim's mount %q (its root may hold lost+found)", dd, data.MountPath)
	}
	pl := mountOf["plugins"]
	if !pl.ReadOnly || pl.MountPath != "/plugins" || !strings.HasPrefix(m.cm.Data["PIPELINE_PLUGIN"], "/plugins/") {
		t.Errorf("plugins: mount %+v, PIPELINE_PLUGIN %q", pl, m.cm.Data["PIPELINE_PLUGIN"])
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.FSGroup == nil || *sc.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v: run as the image's uid 65532 with fsGroup 65532 (the claim must be writable)", sc)
	}
	t.Logf("decoded %d manifests", m.decoded)
}

// deref writes an optional count (unset: "unset").
func deref(n *int32) string {
	if n == nil {
		return "unset"
	}
	return strconv.Itoa(int(*n))
}
