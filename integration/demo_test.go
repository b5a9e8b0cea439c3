package integration

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// emailAddress matches what a reader would take for an e-mail address.
var emailAddress = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

// workerIdentity matches the identities Temporal records (pid@host), which the e-mail
// pattern would take for addresses when the host name has a dot.
var workerIdentity = regexp.MustCompile(`"identity":\s*"([^"]*)"`)

// serverFailures are the messages of failures the Temporal server writes itself (a workflow
// task failed with cause UNHANDLED_COMMAND, when a signal arrives while a workflow
// completes): no codec runs there, and they carry nothing but the cause.
var serverFailures = map[string]bool{"UnhandledCommand": true}

// demoRun is scripts/demo.sh (what `make demo` runs) as a child process, in its own process
// group, on addresses of the test's own.
type demoRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	exited chan struct{}
}

// demoSettings are the settings of a demo beside any other: free ports, state in dir, the
// database dsn.
type demoSettings struct {
	dir, dsn                               string
	temporalPort, uiPort, target, httpAddr string
}

func newDemoSettings(t *testing.T) demoSettings {
	port := func() string { _, p, _ := net.SplitHostPort(freeAddr(t)); return p }
	return demoSettings{
		dir: filepath.Join(t.TempDir(), "dev"), dsn: testenv.NewDatabase(t, false),
		temporalPort: port(), uiPort: port(), target: freeAddr(t), httpAddr: freeAddr(t),
	}
}

// startDemo runs the demo until its full sync is done and it says so, as it does before
// waiting for Ctrl-C.
func startDemo(t *testing.T, s demoSettings) *demoRun {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Only this test's settings: nothing of the caller's Temporal, database or scimsync
	// environment leaks into the demo.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TEMPORAL_") || strings.HasPrefix(name, "SCIMSYNC_") || name == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"DATABASE_URL="+s.dsn,
		"SCIMSYNC_DEMO_DIR="+s.dir,
		"SCIMSYNC_DEMO_TEMPORAL_PORT="+s.temporalPort,
		"SCIMSYNC_DEMO_UI_PORT="+s.uiPort,
		"SCIMSYNC_DEMO_TARGET_ADDR="+s.target,
		"SCIMSYNC_DEMO_HTTP_ADDR="+s.httpAddr,
	)
	d := &demoRun{t: t, out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"))
	d.cmd.Dir = root
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// Its own process group, so that whatever it leaves behind can be ended with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start scripts/demo.sh: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(d.stop)

	// The first run builds the binaries; later ones start in seconds.
	deadline := time.After(8 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(d.out.String(), "Press Ctrl-C to stop everything the demo started.") {
		select {
		case <-d.exited:
			t.Fatalf("scripts/demo.sh exited (%v) before the demo was up:\n%s", d.cmd.ProcessState, d.out)
		case <-deadline:
			t.Fatalf("scripts/demo.sh not up after 8 minutes:\n%s", d.out)
		case <-tick.C:
		}
	}
	return d
}

// stop does what Ctrl-C does, and ends the process group if the demo does not stop.
func (d *demoRun) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	syscall.Kill(d.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		d.t.Errorf("scripts/demo.sh did not stop within 60s of SIGINT:\n%s", d.out)
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// clearEmails returns the e-mail addresses in text, leaving out the workers' identities.
func clearEmails(text string) []string {
	for _, m := range workerIdentity.FindAllStringSubmatch(text, -1) {
		text = strings.ReplaceAll(text, m[1], "")
	}
	return emailAddress.FindAllString(text, -1)
}

// TestDemoHistoriesHoldNoEmailInClear runs scripts/demo.sh (what `make demo` runs) twice
// on the same state directory and reads the Temporal histories its full syncs and
// per-object syncs wrote: no e-mail address is in clear, every payload is sealed with the
// demo's key, the worker's codec server opens them (the directory's addresses are there),
// the Web UI is configured to decode through it and its origin may call it, the key is
// made once, owner-only, and kept across runs, and it appears in no log.
func TestDemoHistoriesHoldNoEmailInClear(t *testing.T) {
	if _, err := testenv.TemporalCLI(); err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Users []struct{ Username, Name, Email string } `json:"users"`
	}
	if b, err := os.ReadFile(filepath.Join(root, "examples", "directory.json")); err != nil || json.Unmarshal(b, &sample) != nil {
		t.Fatalf("examples/directory.json: %v", err)
	}
	var directoryEmails, names []string
	for _, u := range sample.Users {
		if u.Email != "" {
			directoryEmails = append(directoryEmails, u.Email)
		}
		if strings.Contains(u.Name, " ") { // a short single word could be in base64 by chance
			names = append(names, u.Name)
		}
	}
	if len(directoryEmails) < 10 {
		t.Fatalf("examples/directory.json has %d e-mail addresses", len(directoryEmails))
	}

	s := newDemoSettings(t)
	endpoint := "http://" + s.httpAddr + "/codec"
	keyFile := filepath.Join(s.dir, "codec-key")

	// check reads every history of the demo's task queue and returns how many runs.
	check := func(run int, d *demoRun) int {
		t.Helper()
		c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + s.temporalPort, Namespace: testenv.Namespace})
		if err != nil {
			t.Fatalf("run %d: dial the demo's Temporal: %v", run, err)
		}
		defer c.Close()
		st, err := store.Open(context.Background(), s.dsn)
		if err != nil {
			t.Fatalf("run %d: open the demo's database: %v", run, err)
		}
		queue := workflows.DefaultTaskQueue(installationOf(t, st)) // the demo sets no task queue
		st.Close()
		hist := exportHistories(t, c, queue)
		if hist.Runs == 0 || len(hist.Payloads) == 0 {
			t.Fatalf("run %d: the demo's histories are empty: %d runs, %d payloads", run, hist.Runs, len(hist.Payloads))
		}
		raw := hist.text()
		// What a reader can read: the events (payload data in base64, which has no '@') and
		// the data of payloads not sealed. Ciphertext is left out of the pattern search,
		// where random bytes could look like an address; the directory's own addresses
		// and names are searched everywhere.
		readable := hist.JSON.String()
		for _, p := range hist.Payloads {
			if string(p.Metadata["encoding"]) != codec.MetadataEncoding {
				readable += "\n" + string(p.Data)
			}
		}
		if found := clearEmails(readable); len(found) > 0 {
			t.Errorf("run %d: the demo's histories show %d e-mail addresses in clear, e.g. %q", run, len(found), found[0])
		}
		for _, e := range append(directoryEmails, names...) {
			if strings.Contains(raw, e) {
				t.Errorf("run %d: the demo's histories show %q in clear", run, e)
			}
		}
		keyIDs := map[string]int{} // "" counts the payloads not sealed
		for _, p := range hist.Payloads {
			if string(p.Metadata["encoding"]) != codec.MetadataEncoding {
				keyIDs[""]++
				continue
			}
			keyIDs[string(p.Metadata[codec.MetadataKeyID])]++
		}
		if len(keyIDs) != 1 || keyIDs["demo"] != len(hist.Payloads) {
			t.Errorf("run %d: payloads by key id (\"\": not sealed) %v, want all %d sealed with the demo's key", run, keyIDs, len(hist.Payloads))
		}
		var failureAttrs []*commonpb.Payload
		encoded := 0
		for _, f := range hist.Failures {
			switch {
			case f.GetMessage() == "Encoded failure" && f.GetEncodedAttributes() != nil:
				encoded++
				failureAttrs = append(failureAttrs, f.GetEncodedAttributes())
			case serverFailures[f.GetMessage()]:
				// written by Temporal itself, which holds no codec; it names a cause only
			default:
				t.Errorf("run %d: a failure in clear: %q", run, f.GetMessage())
			}
		}

		// The worker's codec server opens all of it, this run's and the earlier run's: the
		// key was kept. An unknown or changed key makes /codec/decode fail.
		decoded := decodeThroughCodecServer(t, endpoint, append(hist.Payloads, failureAttrs...))
		var plain strings.Builder
		for _, p := range decoded {
			if string(p.Metadata["encoding"]) == codec.MetadataEncoding {
				t.Fatalf("run %d: the codec server left a payload sealed", run)
			}
			plain.Write(p.Data)
			plain.WriteByte('\n')
		}
		visible := 0
		for _, e := range directoryEmails {
			if strings.Contains(plain.String(), e) {
				visible++
			}
		}
		if visible == 0 {
			t.Errorf("run %d: no e-mail address of the directory in the decoded histories", run)
		}

		// The Web UI decodes through that codec server, and its origin may call it.
		code, body := httpGet(t, "http://127.0.0.1:"+s.uiPort+"/api/v1/settings")
		var settings struct{ Codec struct{ Endpoint string } }
		if err := json.Unmarshal([]byte(body), &settings); code != 200 || err != nil || settings.Codec.Endpoint != endpoint {
			t.Errorf("run %d: the Web UI's settings: %d %v, codec endpoint %q, want %q", run, code, err, settings.Codec.Endpoint, endpoint)
		}
		for _, origin := range []string{"http://localhost:" + s.uiPort, "http://127.0.0.1:" + s.uiPort} {
			req, _ := http.NewRequest(http.MethodOptions, endpoint+"/decode", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("run %d: preflight from the Web UI at %s: %d %v", run, origin, resp.StatusCode, resp.Header)
			}
		}

		// The key is in none of the logs, nor in the histories in any form.
		key, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		texts := map[string]string{"the demo's output": d.out.String(), "the histories": raw}
		for _, name := range []string{"worker.log", "temporal.log", "target.log"} {
			b, _ := os.ReadFile(filepath.Join(s.dir, name))
			texts[name] = string(b)
		}
		if l := leaks([]string{strings.TrimSpace(string(key))}, texts); len(l) > 0 {
			t.Errorf("run %d: the codec key leaks: %v", run, l)
		}
		figures(t, "run %d: %d runs, %d events, %d payloads all sealed with key demo, %d failures encoded, %d e-mail addresses in clear; "+
			"decoded through /codec/decode: %d of the directory's %d addresses", run, hist.Runs, hist.Events, len(hist.Payloads),
			encoded, len(clearEmails(readable)), visible, len(directoryEmails))
		return hist.Runs
	}

	d1 := startDemo(t, s)
	key1, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("the demo made no codec key in its state directory: %v", err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("codec key file mode: %v %v, want 0600", st.Mode(), err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(key1) {
		t.Errorf("codec key file holds %d bytes, not 32 bytes in hex", len(key1))
	}
	runs1 := check(1, d1)
	d1.stop()

	// A second run reuses the key: the first run's payloads still open.
	d2 := startDemo(t, s)
	key2, err := os.ReadFile(keyFile)
	if err != nil || string(key2) != string(key1) {
		t.Fatalf("the second run changed the codec key (%v)", err)
	}
	if runs2 := check(2, d2); runs2 <= runs1 {
		t.Errorf("the second run's histories: %d runs, want more than the first run's %d", runs2, runs1)
	}
	d2.stop()
	if t.Failed() {
		t.Logf("demo output (second run):\n%s", d2.out)
	}
}
