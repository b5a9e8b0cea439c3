package scim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scimtest"
)

// peer is a SCIM server the contract suite runs against.
type peer struct {
	name  string
	url   string
	token string
	// bulk: the peer supports /Bulk.
	bulk bool
	// jsonFilterStrings: filter values are JSON strings as RFC 7644
	// requires (escaped quotes and backslashes). SCIMMY 1.3.5 refuses
	// `\"` with 400 invalidFilter and keeps `\\` as two characters.
	jsonFilterStrings bool
	// state returns the exact stored users and groups.
	state func(t *testing.T) (users, groups []map[string]any)
	// reset empties the peer.
	reset func(t *testing.T)
}

func scimtestPeer(t *testing.T) peer {
	t.Helper()
	srv := scimtest.NewServer(scimtest.Options{Token: "scimtest-token"})
	t.Cleanup(srv.Close)
	return peer{
		name: "scimtest", url: srv.URL, token: "scimtest-token", bulk: true, jsonFilterStrings: true,
		state: func(*testing.T) ([]map[string]any, []map[string]any) { return srv.Users(), srv.Groups() },
		reset: func(*testing.T) { srv.Reset() },
	}
}

// repoRoot walks up from the package directory to the go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// requireTool fails under CI=true (a missing service is a failure there,
// DESIGN §11) and skips otherwise.
func requireTool(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and "+format, args...)
	}
	t.Skipf(format, args...)
}

// syncBuffer collects a child's stderr for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scimmyPeer starts `node integration/scimmy/server.js` on a free port.
// Without node or the npm packages it skips, or fails when CI=true.
func scimmyPeer(t *testing.T, env ...string) peer {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "integration", "scimmy")
	node, err := exec.LookPath("node")
	if err != nil {
		requireTool(t, "node is not installed: the SCIMMY peer cannot run")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "scimmy-routers", "package.json")); err != nil {
		requireTool(t, "npm packages missing: run `npm ci --prefix integration/scimmy`")
	}
	const token = "scimmy-token"
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PORT=0", "SCIMMY_TOKEN=" + token}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start SCIMMY: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "SCIMMY_URL="); ok {
				urlCh <- u
			}
		}
	}()
	var base string
	select {
	case base = <-urlCh:
	case <-time.After(20 * time.Second):
		t.Fatalf("SCIMMY did not start within 20s; stderr:\n%s", stderr.String())
	}
	root := strings.TrimSuffix(base, "/scim/v2")
	hc := &http.Client{Timeout: 10 * time.Second}
	return peer{
		name: "scimmy", url: base, token: token, bulk: true,
		state: func(t *testing.T) ([]map[string]any, []map[string]any) {
			t.Helper()
			resp, err := hc.Get(root + "/_state")
			if err != nil {
				t.Fatalf("SCIMMY state: %v", err)
			}
			defer resp.Body.Close()
			var st struct{ Users, Groups []map[string]any }
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatalf("SCIMMY state: %v", err)
			}
			return st.Users, st.Groups
		},
		reset: func(t *testing.T) {
			t.Helper()
			resp, err := hc.Post(root+"/_reset", "application/json", nil)
			if err != nil {
				t.Fatalf("SCIMMY reset: %v", err)
			}
			resp.Body.Close()
		},
	}
}
