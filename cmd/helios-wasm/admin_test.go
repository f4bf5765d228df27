package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdminTokenFile: without --admin-token, run generates admin.token
// (0600) in the data directory and requires it on loopback; the CLI finds
// it through --data-dir; a browser-shaped request is refused.
func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if r := runCLI(t, "{\"a\":1}\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd, addr := startLogged(t, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out",
		"--data-dir", data, "--follow", "--admin", "127.0.0.1:0", "--name", "tok")
	st, err := os.Stat(filepath.Join(data, "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v, want mode 0600", st, err)
	}
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	if n := listeningTCP(t, cmd.Process.Pid); n != 1 { // what TestServeAdminOff checks is 0
		t.Fatalf("run --admin listens on %d TCP sockets, want 1", n)
	}

	if r := runCLI(t, "", nil, "plugin", "rollback", "--admin", addr, "--pipeline", "tok", "--data-dir", filepath.Join(dir, "elsewhere")); r.code != 2 ||
		!strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "--data-dir") {
		t.Fatalf("rollback without the token: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--data-dir", data, plugin(t, "lowercase")); r.code != 0 {
		t.Fatalf("swap with the data directory's token: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "status", "--admin", addr, "--data-dir", data); r.code != 0 || !strings.Contains(r.stdout, sha(t, plugin(t, "lowercase"))[:12]) {
		t.Fatalf("status: %d %s %s", r.code, r.stdout, r.stderr)
	}
	wasm, _ := os.ReadFile(plugin(t, "uppercase"))
	for _, tt := range []struct {
		name string
		hdr  map[string]string
		host string
		want int
	}{
		{"text/plain upload (no-preflight cross-site shape)", map[string]string{"Content-Type": "text/plain"}, "", 415},
		{"cross-site page", map[string]string{"Content-Type": "application/wasm", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, "", 403},
		{"rebound name", map[string]string{"Content-Type": "application/wasm"}, "evil.example:80", 421},
	} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/pipelines/tok/plugin", bytes.NewReader(wasm))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		for k, v := range tt.hdr {
			req.Header.Set(k, v)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, body, tt.want)
		}
	}
	if r := runCLI(t, "", nil, "status", "--admin", addr, "--data-dir", data); !strings.Contains(r.stdout, sha(t, plugin(t, "lowercase"))[:12]) {
		t.Fatalf("a refused request changed the plugin:\n%s", r.stdout)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if r := runCLI(t, "", nil, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out", "--data-dir", data,
		"--keep-versions", "1"); r.code != 2 || !strings.Contains(r.stderr, "--keep-versions") {
		t.Fatalf("--keep-versions 1: %d %s", r.code, r.stderr)
	}
}

// TestServeAdminOff: "admin": "" in serve's config starts no listener.
func TestServeAdminOff(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if r := runCLI(t, "{\"a\":1}\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	path := filepath.Join(dir, "pipelines.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{"data_dir": %q, "admin": "", "pipelines": [
		{"name": "up", "plugin": %q, "input": "log:in", "output": "log:up"}]}`, data, plugin(t, "uppercase"))), 0o644)
	cmd := startWaiting(t, "admin API off", "serve", "--config", path)
	time.Sleep(200 * time.Millisecond) // pipelines are running
	if n := listeningTCP(t, cmd.Process.Pid); n != 0 {
		t.Fatalf("serve with the admin API off listens on %d TCP sockets", n)
	}
	if _, err := os.Stat(filepath.Join(data, "admin.token")); err == nil {
		t.Error("admin.token generated although the admin API is off")
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	os.WriteFile(path, []byte(fmt.Sprintf(`{"data_dir": %q, "keep_versions": 1, "pipelines": [
		{"name": "up", "plugin": %q, "input": "log:in", "output": "log:up"}]}`, data, plugin(t, "uppercase"))), 0o644)
	if r := runCLI(t, "", nil, "serve", "--config", path); r.code != 2 || !strings.Contains(r.stderr, "keep_versions 1") {
		t.Fatalf("keep_versions 1: %d %s", r.code, r.stderr)
	}
}

// listeningTCP counts pid's TCP sockets in the LISTEN state.
func listeningTCP(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] {
				n++
			}
		}
	}
	return n
}
