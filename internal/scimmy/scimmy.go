// Package scimmy starts SCIMMY, a third-party SCIM 2.0 server (the npm packages scimmy and
// scimmy-routers behind integration/scimmy/server.js), for tests that prove scimsync
// against a server it did not write. Without node or the npm packages a test is skipped,
// or fails under CI=true.
package scimmy

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
)

// Token is the bearer token the server accepts.
const Token = "scimmy-token"

// Server is a running SCIMMY.
type Server struct {
	// URL is the SCIM base URL (…/scim/v2), without trailing slash.
	URL string
	// Root is the server without the base path; /_state and /_reset live there.
	Root string

	hc     *http.Client
	stderr *testenv.SyncBuffer
}

// Start starts `node integration/scimmy/server.js` on a free port, with extra environment
// variables env ("KEY=value"), and stops it when the test ends.
func Start(tb testing.TB, env ...string) *Server {
	tb.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, "integration", "scimmy")
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(tb, "node is not installed: the third-party SCIM server SCIMMY cannot run")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "scimmy-routers", "package.json")); err != nil {
		testenv.Unavailable(tb, "SCIMMY's npm packages are missing: run `npm ci --prefix integration/scimmy` (or `make tools`)")
	}
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PORT=0", "SCIMMY_TOKEN=" + Token}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{hc: &http.Client{Timeout: 10 * time.Second}, stderr: &testenv.SyncBuffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start SCIMMY: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if tb.Failed() && s.stderr.String() != "" {
			tb.Logf("SCIMMY stderr:\n%s", s.stderr.String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "SCIMMY_URL="); ok {
				urls <- u
			}
		}
	}()
	select {
	case s.URL = <-urls:
	case <-time.After(20 * time.Second):
		tb.Fatalf("SCIMMY did not start within 20s; stderr:\n%s", s.stderr.String())
	}
	s.Root = strings.TrimSuffix(s.URL, "/scim/v2")
	return s
}

// State returns the exact stored users and groups, as SCIMMY keeps them.
func (s *Server) State(tb testing.TB) (users, groups []map[string]any) {
	tb.Helper()
	resp, err := s.hc.Get(s.Root + "/_state")
	if err != nil {
		tb.Fatalf("SCIMMY state: %v", err)
	}
	defer resp.Body.Close()
	var st struct{ Users, Groups []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		tb.Fatalf("SCIMMY state: %v", err)
	}
	return st.Users, st.Groups
}

// Reset empties the server.
func (s *Server) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := s.hc.Post(s.Root+"/_reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("SCIMMY reset: %v", err)
	}
	resp.Body.Close()
}
