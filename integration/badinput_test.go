package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/starter"
	"github.com/scimsync/scimsync/store"
)

// applyConfig runs `starter apply -f` on text and returns the exit code and the output.
func (e *env) applyConfig(text string) (int, string) {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	env := map[string]string{"SCIMSYNC_TASK_QUEUE": e.queue, "SCIMSYNC_INSTALLATION_SECRET": installationSecret,
		"TEMPORAL_NAMESPACE": testenv.Namespace}
	var out bytes.Buffer
	code := starter.Main(e.ctx, &starter.Deps{Getenv: func(k string) string { return env[k] }, Store: e.store, Temporal: e.temporal},
		[]string{"apply", "-f", path}, &out, &out)
	return code, strings.ReplaceAll(out.String(), path, "config.yaml")
}

// configSnapshot is the configuration as stored: every row of the configuration tables.
func (e *env) configSnapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, tbl := range []string{"providers", "property_mappings", "provider_mappings", "applications",
		"application_bindings", "provider_group_filters"} {
		var rows []string
		if err := e.store.DB().SelectContext(e.ctx, &rows, fmt.Sprintf(`SELECT t::text FROM %s t ORDER BY 1`, tbl)); err != nil {
			e.t.Fatalf("snapshot %s: %v", tbl, err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", tbl, strings.Join(rows, "\n"))
	}
	return b.String()
}

// filePosition is the file:line:column an error of apply starts with.
var filePosition = regexp.MustCompile(`(?m)^config\.yaml:\d+:\d+: `)

const goodConfig = `applications:
  - name: portal
bindings:
  - application: portal
    group: staff
mappings:
  - name: title
    kind: user
    expression: |
      return {"title": user.attributes.get("title", "none")}
providers:
  - name: acme
    base_url: https://acme.example.com/scim/v2
    auth:
      mode: token
      token: env:ACME_TOKEN
    compatibility_mode: default
    application: portal
    page_size: 100
    deprovision:
      action: delete
    mappings: [00-default-user, 00-default-group, title]
  - name: beta
    base_url: https://beta.example.com/scim
    auth:
      mode: oauth2
      token_url: https://beta.example.com/oauth/token
      client_id: scimsync
      client_secret: file:/run/secrets/beta
    compatibility_mode: aws
`

// TestBadConfigurationIsRejectedWhole: starting from an applied configuration, each field
// made invalid in turn (URL, compatibility mode, auth, mapping syntax, unknown keys, ...)
// is reported with its file position and field, and nothing of the file is applied, not
// even its valid changes (page_size of acme goes from 100 to 50 in every bad file).
func TestBadConfigurationIsRejectedWhole(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	e.tx(func(tx *store.Tx) error { _, err := tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); return err })
	if code, out := e.applyConfig(goodConfig); code != 0 {
		t.Fatalf("apply the good configuration: exit %d\n%s", code, out)
	}
	before := e.configSnapshot()
	valid := strings.Replace(goodConfig, "page_size: 100", "page_size: 50", 1)
	if valid == goodConfig {
		t.Fatal("the valid change is not in the file")
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"URL scheme", "base_url: https://beta.example.com/scim", "base_url: ftp://beta.example.com/scim",
			`providers[1].base_url: invalid URL "ftp://beta.example.com/scim": the scheme must be http or https`},
		{"URL without host", "base_url: https://acme.example.com/scim/v2", "base_url: https:///scim/v2",
			`providers[0].base_url: invalid URL "https:///scim/v2": a host is required`},
		{"credentials in the URL", "base_url: https://beta.example.com/scim", "base_url: https://admin:hunter2@beta.example.com/scim",
			`providers[1].base_url: invalid URL `},
		{"compatibility mode", "compatibility_mode: aws", "compatibility_mode: okta",
			`providers[1].compatibility_mode: unknown value "okta": use default, aws, slack, salesforce, webex, vcenter or gitlab`},
		{"auth mode", "mode: token", "mode: digest", `providers[0].auth.mode: unknown value "digest": use token, oauth2 or basic`},
		{"token reference", "token: env:ACME_TOKEN", `token: "env:"`, `providers[0].auth.token: env: must be followed by an environment variable name`},
		{"secret file reference", "client_secret: file:/run/secrets/beta", "client_secret: file:secrets/beta",
			`providers[1].auth.client_secret: file: must be followed by an absolute path`},
		{"oauth2 without token URL", "      token_url: https://beta.example.com/oauth/token\n", "", `providers[1].auth`},
		{"mapping syntax", `return {"title": user.attributes.get("title", "none")}`, `return {"title": user.attributes.get("title", "none")`,
			`mappings[0].expression: line 2:1 of mapping "title": got end of file, want '}'`},
		{"unknown provider key", "    page_size: 50", "    page_sise: 50", `providers[0].page_sise: unknown field (did you mean page_size?)`},
		{"unknown top-level key", "mappings:\n", "mapings:\n", `mapings: unknown field`},
		{"deprovision action", "action: delete", "action: purge", `providers[0].deprovision.action: unknown value "purge"`},
		{"deactivate_then_delete without delete_after", "action: delete", "action: deactivate_then_delete",
			`config.yaml:21:15: providers[0].deprovision.delete_after: required with deprovision action deactivate_then_delete`},
		{"delete_after with another action", "action: delete", "action: delete\n      delete_after: 720h",
			`config.yaml:22:21: providers[0].deprovision.delete_after: only used with deprovision action deactivate_then_delete (this provider's is delete)`},
		{"delete_after not a duration", "action: delete", "action: deactivate_then_delete\n      delete_after: 30d",
			`config.yaml:22:21: providers[0].deprovision.delete_after: expected a duration such as 720h (30 days) or 168h, got "30d"`},
		{"delete_after not positive", "action: delete", "action: deactivate_then_delete\n      delete_after: 0s",
			`config.yaml:22:21: providers[0].deprovision.delete_after: must be more than 0`},
		{"page size", "page_size: 50", "page_size: -5", `providers[0].page_size: `},
	} {
		t.Run(safeName(tc.name), func(t *testing.T) {
			text := strings.Replace(valid, tc.old, tc.new, 1)
			if text == valid {
				t.Fatalf("the change %q is not in the file", tc.old)
			}
			code, out := e.applyConfig(text)
			if code != starter.ExitUsage || !strings.Contains(out, tc.want) || !strings.Contains(out, "has 1 error; nothing was written") ||
				!filePosition.MatchString(out) {
				t.Errorf("exit %d, want %d, one error at a file position containing %q, and \"nothing was written\":\n%s",
					code, starter.ExitUsage, tc.want, out)
			}
			if after := e.configSnapshot(); after != before {
				t.Errorf("a rejected file changed the configuration:\nbefore %s\nafter  %s", before, after)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("the error echoes the password written in the URL:\n%s", out)
			}
		})
	}
	// The valid change alone applies.
	if code, out := e.applyConfig(valid); code != 0 || e.configSnapshot() == before {
		t.Errorf("the valid file: exit %d\n%s", code, out)
	}
}

// TestBadWorkerConfigurationStopsAtStart: each worker setting made invalid in turn stops
// the worker at once with exit code 2 and a message naming the setting, never a secret.
func TestBadWorkerConfigurationStopsAtStart(t *testing.T) {
	bin := buildWorker(t)
	good := []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=postgres://nobody:dbpassw0rd@127.0.0.1:1/none",
		"SCIMSYNC_INSTALLATION_SECRET=s3cret-installation", "SCIMSYNC_HTTP_ADDR="}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no database", []string{"DATABASE_URL="}, nil, "DATABASE_URL (or -database-url) is required"},
		{"no installation secret", []string{"SCIMSYNC_INSTALLATION_SECRET="}, nil, "SCIMSYNC_INSTALLATION_SECRET (or -installation-secret) is required"},
		{"missing secret reference", []string{"SCIMSYNC_INSTALLATION_SECRET=env:IT_NOT_SET"}, nil, "installation secret: environment variable IT_NOT_SET is not set"},
		{"log format", []string{"SCIMSYNC_LOG_FORMAT=xml"}, nil, `log format "xml": use text or json`},
		{"timeout", []string{"SCIMSYNC_REQUEST_TIMEOUT=-1s"}, nil, "request-timeout must be positive"},
		{"TLS pair", []string{"TEMPORAL_TLS_CERT=/tmp/cert.pem"}, nil, "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together"},
		{"codec key", []string{"SCIMSYNC_CODEC_KEYS=k1=c2hvcnQ="}, nil, "SCIMSYNC_CODEC_KEYS: codec: key k1: decodes to 5 bytes, want 32"},
		{"codec list", []string{"SCIMSYNC_CODEC_KEYS=oops"}, nil, "SCIMSYNC_CODEC_KEYS: codec: key list entry 1: want id=reference"},
		{"escrow delays", []string{"SCIMSYNC_ESCROW_DELAYS=1h,1m"}, nil, `escrow delays "1h,1m": 1m0s is shorter than 1h0m0s before it`},
		{"escrow interval", []string{"SCIMSYNC_ESCROW_INTERVAL=-1s"}, nil, "escrow-interval (SCIMSYNC_ESCROW_INTERVAL) must not be negative"},
		{"unknown flag", nil, []string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		t.Run(safeName(tc.name), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = append(append([]string{}, good...), tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %v, want 2 and %q:\n%s", err, tc.want, out)
			}
			if strings.Contains(string(out), "s3cret-installation") || strings.Contains(string(out), "dbpassw0rd") {
				t.Errorf("a secret was printed:\n%s", out)
			}
		})
	}
}

// TestBadTargetsFailClearly: targets that answer HTML, invalid JSON or a huge body, answer
// a create without id, redirect, or present a certificate nobody trusts, and providers
// whose stored configuration cannot work, each end their full sync with a clear error
// that names the provider (or, for creates without id, with an error on each object),
// after a handful of requests and no retries; the worker process keeps running.
func TestBadTargetsFailClearly(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	d := buildFlatDirectory(e, 12, 2)
	e.clearOutbox()

	huge := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"padding":"` + strings.Repeat("x", 17<<20) + `"}`
	type target struct {
		srv     *scimtest.Server
		provide func(p *store.Provider)
		want    []string // in the full sync's error
	}
	newTarget := func(f *scimtest.Fault, tls bool) *scimtest.Server {
		s := scimtest.NewUnstartedServer(scimtest.Options{Token: targetToken, Config: scimtest.Config{NoBulk: true}})
		if tls {
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		if f != nil {
			s.AddFault(*f)
		}
		return s
	}
	targets := map[string]*target{
		"bad-html":     {srv: newTarget(&scimtest.Fault{Body: "<html><body>Please log in</body></html>"}, false), want: []string{"response is not JSON"}},
		"bad-json":     {srv: newTarget(&scimtest.Fault{Body: `{"schemas": [`, ContentType: "application/scim+json"}, false), want: []string{"response is not JSON"}},
		"bad-huge":     {srv: newTarget(&scimtest.Fault{Body: huge, ContentType: "application/scim+json"}, false), want: []string{"response body too large"}},
		"bad-redirect": {srv: newTarget(&scimtest.Fault{Status: http.StatusFound, Header: http.Header{"Location": {"https://login.example.invalid/"}}}, false), want: []string{"unexpected redirect"}},
		"bad-tls":      {srv: newTarget(nil, true), want: []string{"TLS error: certificate signed by an unknown authority"}},
		"bad-noid": {srv: newTarget(&scimtest.Fault{Method: "POST", Route: "/Users", Status: http.StatusCreated,
			Body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"someone"}`, ContentType: "application/scim+json"}, false)},
		"cfg-env": {srv: newTarget(nil, false), provide: func(p *store.Provider) { p.Token = "env:IT_NEVER_SET" },
			want: []string{"environment variable IT_NEVER_SET is not set"}},
		"cfg-url": {srv: newTarget(nil, false), provide: func(p *store.Provider) { p.BaseURL = "not a url" }, want: []string{"bad base URL"}},
		"cfg-mode": {srv: newTarget(nil, false), provide: func(p *store.Provider) { p.CompatibilityMode = "okta" },
			want: []string{"okta"}},
		"cfg-auth": {srv: newTarget(nil, false), provide: func(p *store.Provider) { p.AuthMode = "basic" },
			want: []string{"auth mode basic needs a username and a password"}},
	}
	for name, tg := range targets {
		tg := tg
		var saveErr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					saveErr = fmt.Errorf("%v", r)
				}
			}()
			p := store.ProviderDefaults()
			p.Name, p.BaseURL, p.Token = name, tg.srv.URL, "env:IT_TARGET_TOKEN"
			if tg.provide != nil {
				tg.provide(&p)
			}
			saveErr = e.store.InTx(e.ctx, func(tx *store.Tx) error { _, err := tx.UpsertProvider(e.ctx, p); return err })
		}()
		if saveErr != nil {
			// The store refused it: that is a clear error too, and nothing was saved.
			t.Logf("provider %s refused by the store: %v", name, saveErr)
			if !strings.Contains(saveErr.Error(), name) {
				t.Errorf("the store's error for %s does not name it: %v", name, saveErr)
			}
			delete(targets, name)
		}
	}

	w := e.newWorkerProc(buildWorker(t), workerOptions{})
	w.Start()
	for name, tg := range targets {
		id := e.scheduledFullSync(e.temporal, name, time.Minute)
		progress, err := e.awaitWorkflow(e.temporal, id, 3*time.Minute)
		requests := len(tg.srv.Requests())
		switch {
		case tg.want == nil: // bad-noid: every user fails, the sync goes on
			var failed []string
			e.store.DB().SelectContext(e.ctx, &failed, `SELECT l.last_error FROM sync_links l JOIN providers p ON p.id = l.provider_id
				WHERE p.name = $1 AND l.kind = 'user' AND l.last_error <> ''`, name)
			if err != nil || progress.Users.Failed != len(d.users) || len(failed) != len(d.users) || !strings.Contains(strings.Join(failed, ""), "create response has no id") {
				t.Errorf("%s: %v, progress %+v, %d link errors %v", name, err, progress.Users, len(failed), failed[:min(1, len(failed))])
			}
			if requests > 4*len(d.users)+10 {
				t.Errorf("%s: %d requests for %d users", name, requests, len(d.users))
			}
		default:
			msg := fullError(err)
			if err == nil || !strings.Contains(msg, "provider "+name) {
				t.Errorf("%s: full sync error %v, want one naming the provider", name, err)
			}
			for _, want := range tg.want {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: error %q lacks %q", name, msg, want)
				}
			}
			if requests > 3 {
				t.Errorf("%s: %d requests to the target, want a handful", name, requests)
			}
		}
		t.Logf("%s: %d requests; %s", name, requests, firstLine(fullError(err)))
	}
	// No retry storm: every run on the queue has ended (so nothing more can reach the
	// targets), and no activity of any of them ran a second attempt.
	counts := map[string]int{}
	for name, tg := range targets {
		counts[name] = len(tg.srv.Requests())
	}
	for _, problem := range e.retriedOrRunning() {
		t.Error(problem)
	}
	for name, tg := range targets {
		if n := len(tg.srv.Requests()); n != counts[name] {
			t.Errorf("%s: %d more requests after the sync ended", name, n-counts[name])
		}
	}
	// No crash.
	if code, _ := httpGet(t, "http://"+w.Addr+"/healthz"); code != 200 || w.Starts != 1 {
		t.Errorf("worker: /healthz %d after %d starts", code, w.Starts)
	}
	if panics := grepFile(w.Log, "panic"); len(panics) > 0 {
		t.Errorf("the worker panicked: %v", panics)
	}
	figures(t, "%d bad targets and configurations, each a clear error naming the provider; worker up, no retries", len(targets))
}

// retriedOrRunning lists the workflow runs on the test's task queue that are still
// running and the activities of any run that took more than one attempt.
func (e *env) retriedOrRunning() []string {
	e.t.Helper()
	var out []string
	var token []byte
	for {
		resp, err := e.temporal.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testenv.Namespace, Query: fmt.Sprintf("TaskQueue = %q", e.queue), NextPageToken: token,
		})
		if err != nil {
			e.t.Fatalf("list workflows: %v", err)
		}
		for _, info := range resp.Executions {
			id, run := info.Execution.WorkflowId, info.Execution.RunId
			desc, err := e.temporal.DescribeWorkflowExecution(e.ctx, id, run)
			if err != nil {
				e.t.Fatalf("describe %s: %v", id, err)
			}
			if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				out = append(out, fmt.Sprintf("%s is still running", id))
			}
			it := e.temporal.GetWorkflowHistory(e.ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					e.t.Fatalf("history of %s: %v", id, err)
				}
				if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
					out = append(out, fmt.Sprintf("%s: activity %d ran %d attempts", id, a.GetScheduledEventId(), a.GetAttempt()))
				}
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out
		}
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, " | ")
	return first
}

// FuzzTargetAnswers: whatever a target answers (status, content type, body), discovery and
// writes through the activities return an error that names the provider, or record an
// error on the objects, and never panic, hang, or copy the body into the error.
func FuzzTargetAnswers(f *testing.F) {
	for _, seed := range []struct {
		status      int
		contentType string
		body        string
	}{
		{200, "text/html", "<html><body>Sign in</body></html>"},
		{200, "application/scim+json", `{"schemas": [`},
		{200, "application/json", `null`},
		{200, "application/scim+json", `[]`},
		{200, "application/scim+json", `{"patch":{"supported":"yes"},"bulk":{"maxOperations":-3}}`},
		{201, "application/scim+json", `{"userName":"no id here"}`},
		{201, "application/scim+json", `{"id":12}`},
		{302, "text/plain", ""},
		{400, "application/scim+json", `{"status":"400","scimType":"invalidValue","detail":"secret-detail-text"}`},
		{401, "application/json", `{"error":"invalid_token"}`},
		{409, "application/scim+json", `{"status":{"x":1}}`},
		{429, "application/scim+json", `{}`},
		{500, "text/html", "<h1>oops</h1>"},
		{599, "", "\x00\xff"},
	} {
		f.Add(seed.status, seed.contentType, seed.body)
	}
	ctx := context.Background()
	dsn := testenv.NewDatabase(f, true)
	s, err := store.Open(ctx, dsn)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	srv := scimtest.NewServer(scimtest.Options{})
	f.Cleanup(srv.Close)
	var ids []string
	var providerID string
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		for i := range 3 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("fuzz%d", i), Name: "Fuzz Person", Email: fmt.Sprintf("fuzz%d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		p := store.ProviderDefaults()
		p.Name, p.BaseURL = "fuzz", srv.URL
		saved, err := tx.UpsertProvider(ctx, p)
		providerID = saved.ID
		return err
	}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, contentType, body string) {
		if status < 200 || status > 599 || status == http.StatusNoContent || status == http.StatusNotModified {
			t.Skip("not a status a server can send with a body")
		}
		srv.ClearFaults()
		srv.Reset()
		srv.AddFault(scimtest.Fault{Status: status, Body: body, ContentType: contentType})
		if err := s.ClearServiceConfig(ctx, providerID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM sync_links; DELETE FROM provider_pacing`); err != nil {
			t.Fatal(err)
		}
		pacers := pacing.NewRegistry(s, nil)
		defer pacers.Close()
		a := &activities.Activities{Store: s, Mapper: &mapping.Engine{Secret: installationSecret}, RequestTimeout: 5 * time.Second,
			Pacing: pacers}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		check := func(what string, err error) {
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "provider fuzz") {
				t.Errorf("%s: error %q does not name the provider", what, err)
			}
			if len(body) >= 8 && strings.Contains(err.Error(), body) {
				t.Errorf("%s: error %q contains the body", what, err)
			}
		}
		if status == http.StatusTooManyRequests {
			// A target that throttles everything is waited for, not failed: the request is
			// sent again after each pause (1s, 2s, 4s... without Retry-After) until the
			// activity's time is up, and Temporal retries it.
			short, cancel := context.WithTimeout(ctx, 3500*time.Millisecond)
			defer cancel()
			_, err := a.Discover(short, activities.ProviderInput{Provider: "fuzz"})
			if err == nil {
				t.Fatal("discovery of a target that answers 429 to everything succeeded")
			}
			check("discover", err)
			// At most one after each pause: at 0s, after the 1s pause, after the 2s one.
			if n := srv.Count("GET /ServiceProviderConfig"); n < 1 || n > 3 {
				t.Errorf("%d discovery requests in 3.5s, want 1 to 3", n)
			}
			return
		}
		_, err := a.Discover(ctx, activities.ProviderInput{Provider: "fuzz"})
		check("discover", err)
		mapped, err := a.MapObjects(ctx, activities.ObjectsInput{Provider: "fuzz", Kind: object.User, IDs: ids})
		if err != nil {
			t.Fatalf("map: %v", err)
		}
		res, err := a.WriteObjects(ctx, activities.WriteInput{Provider: "fuzz", Kind: object.User, Objects: mapped.Changed})
		check("write", err)
		for _, fail := range res.Failed {
			if len(body) >= 8 && strings.Contains(fail.Error, body) {
				t.Errorf("object error %q contains the body", fail.Error)
			}
		}
		if ctx.Err() != nil {
			t.Errorf("the calls took 30s: %v", ctx.Err())
		}
	})
}
