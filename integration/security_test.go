package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// historyExport is every event of every workflow run of a task queue: as protobuf JSON
// (what `temporal workflow show --output json` prints), with the payloads and failures
// found inside.
type historyExport struct {
	Runs, Events int
	JSON         bytes.Buffer
	Payloads     []*commonpb.Payload // outside search attributes (which a codec never encodes)
	Failures     []*failurepb.Failure
}

// exportHistories exports the histories of every workflow run on queue.
func exportHistories(t *testing.T, c client.Client, queue string) *historyExport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	x := &historyExport{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testenv.Namespace, Query: fmt.Sprintf("TaskQueue = %q", queue), NextPageToken: token,
		})
		if err != nil {
			t.Fatalf("list workflows: %v", err)
		}
		for _, info := range resp.Executions {
			x.Runs++
			iter := c.GetWorkflowHistory(ctx, info.Execution.WorkflowId, info.Execution.RunId, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", info.Execution.WorkflowId, err)
				}
				x.Events++
				b, _ := protojson.Marshal(ev)
				x.JSON.Write(b)
				x.JSON.WriteByte('\n')
				x.walk(ev.ProtoReflect(), false)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return x
		}
	}
}

func (x *historyExport) walk(m protoreflect.Message, inSearchAttributes bool) {
	switch v := m.Interface().(type) {
	case *commonpb.Payload:
		if !inSearchAttributes {
			x.Payloads = append(x.Payloads, v)
		}
		return
	case *failurepb.Failure:
		x.Failures = append(x.Failures, v)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		sa := inSearchAttributes || fd.Name() == "search_attributes"
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range val.List().Len() {
				x.walk(val.List().Get(i).Message(), sa)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			val.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
				x.walk(v.Message(), sa)
				return true
			})
		case fd.Message() != nil:
			x.walk(val.Message(), sa)
		}
		return true
	})
}

// text is everything a reader of the histories sees: the JSON and every payload's data.
func (x *historyExport) text() string {
	var b strings.Builder
	b.Write(x.JSON.Bytes())
	for _, p := range x.Payloads {
		b.Write(p.Data)
		b.WriteByte('\n')
	}
	return b.String()
}

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// leaks returns where each secret appears in the named texts, in clear or base64.
func leaks(secrets []string, texts map[string]string) []string {
	var out []string
	for name, text := range texts {
		for _, s := range secrets {
			for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
				if strings.Contains(text, form) {
					out = append(out, fmt.Sprintf("%s shows %.6s…", name, s))
					break
				}
			}
		}
	}
	return out
}

// issuedToken matches the access tokens scimtest's OAuth endpoint issues.
var issuedToken = regexp.MustCompile(`scimtest-\d+-[0-9a-f]{24}`)

// TestSecretsNeverLeave: a bearer token (env: reference), an OAuth2 client secret (file:
// reference), a wrong token and a wrong client secret (for syncs that fail with 401)
// never appear in the workflow histories, the worker's debug logs, error messages, links,
// metrics, or the database, and neither does an access token the OAuth2 endpoint issued;
// no Authorization header is logged.
func TestSecretsNeverLeave(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	token, clientSecret := randomSecret(t, "tok-"), randomSecret(t, "cs-")
	wrongToken, wrongSecret := randomSecret(t, "wrongtok-"), randomSecret(t, "wrongcs-")
	secrets := []string{token, clientSecret, wrongToken, wrongSecret}

	tokTarget := scimtest.NewServer(scimtest.Options{Token: token})
	t.Cleanup(tokTarget.Close)
	oauthTarget := scimtest.NewServer(scimtest.Options{OAuth: &scimtest.OAuth{ClientID: "scimsync", ClientSecret: clientSecret}})
	t.Cleanup(oauthTarget.Close)
	dir := t.TempDir()
	secretFile, wrongFile := filepath.Join(dir, "client-secret"), filepath.Join(dir, "wrong-secret")
	os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600)
	os.WriteFile(wrongFile, []byte(wrongSecret+"\n"), 0o600)

	d := buildFlatDirectory(e, 60, 4)
	e.clearOutbox()
	e.provider("sec-token", func(p *store.Provider) { p.BaseURL = tokTarget.URL; p.Token = "env:IT_SECRET_TOKEN" })
	e.provider("sec-oauth", func(p *store.Provider) {
		p.BaseURL, p.AuthMode, p.Token = oauthTarget.URL, "oauth2", ""
		p.OAuthTokenURL, p.OAuthClientID, p.OAuthClientSecret = oauthTarget.TokenURL(), "scimsync", "file:"+secretFile
	})
	e.provider("sec-badtoken", func(p *store.Provider) { p.BaseURL = tokTarget.URL; p.Token = "env:IT_WRONG_TOKEN" })
	e.provider("sec-badoauth", func(p *store.Provider) {
		p.BaseURL, p.AuthMode, p.Token = oauthTarget.URL, "oauth2", ""
		p.OAuthTokenURL, p.OAuthClientID, p.OAuthClientSecret = oauthTarget.TokenURL(), "scimsync", "file:"+wrongFile
	})

	w := e.newWorkerProc(buildWorker(t), workerOptions{LogLevel: "debug",
		Env: []string{"IT_SECRET_TOKEN=" + token, "IT_WRONG_TOKEN=" + wrongToken}})
	w.Start()
	var errorTexts []string
	for _, name := range []string{"sec-token", "sec-oauth", "sec-badtoken", "sec-badoauth"} {
		id := e.scheduledFullSync(e.temporal, name, time.Minute)
		_, err := e.awaitWorkflow(e.temporal, id, 5*time.Minute)
		bad := strings.HasPrefix(name, "sec-bad")
		switch {
		case bad && (err == nil || !strings.Contains(fullError(err), "provider "+name) || !strings.Contains(fullError(err), "401")):
			t.Errorf("full sync of %s: %v, want a 401 provider error naming it", name, err)
		case !bad && err != nil:
			t.Errorf("full sync of %s: %v", name, err)
		}
		if err != nil {
			errorTexts = append(errorTexts, fullError(err))
		}
	}
	if r := compareState(tokTarget, d, nil); !r.ok() {
		t.Errorf("token target: %s", r)
	}
	if r := compareState(oauthTarget, d, nil); !r.ok() {
		t.Errorf("oauth target: %s", r)
	}
	// A change goes through the change feed to every provider (and fails at the bad ones).
	u := d.users[0]
	u.Name = "Changed Name"
	e.tx(func(tx *store.Tx) (err error) { d.users[0], err = tx.UpdateUser(e.ctx, u); return err })
	e.waitFor(time.Minute, func() string {
		return diffJSON(remoteUser(tokTarget, u.Username), expectedUser(d.users[0])) + diffJSON(remoteUser(oauthTarget, u.Username), expectedUser(d.users[0]))
	})
	// The per-object syncs at the failing providers end (with their errors recorded)
	// before the corpus is read.
	e.waitClosed(e.temporal, time.Minute,
		workflows.ObjectSyncID(e.inst, "sec-badtoken", object.User, u.ID), workflows.ObjectSyncID(e.inst, "sec-badoauth", object.User, u.ID))

	hist := exportHistories(t, e.temporal, e.queue)
	_, metrics := httpGet(t, "http://"+w.Addr+"/metrics")
	logs := w.Logs()
	var links []string
	if err := e.store.DB().SelectContext(e.ctx, &links, `SELECT last_error FROM sync_links WHERE last_error <> ''`); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{
		"workflow histories": hist.text(), "worker logs": logs, "/metrics": metrics,
		"workflow errors": strings.Join(errorTexts, "\n"), "link errors": strings.Join(links, "\n"),
		"database": dumpDatabase(t, e),
	}
	for _, leak := range leaks(secrets, texts) {
		t.Error(leak)
	}
	// Control: the search does find a secret where one really is, in the Authorization
	// headers the target received.
	var received strings.Builder
	for _, r := range tokTarget.Requests() {
		fmt.Fprintln(&received, r.Header)
	}
	if len(leaks([]string{token}, map[string]string{"the target's request log": received.String()})) != 1 {
		t.Error("control failed: the search does not find the token in the headers the target received")
	}
	for name, text := range texts {
		if m := issuedToken.FindString(text); m != "" {
			t.Errorf("%s shows an issued access token", name)
		}
	}
	for _, line := range grepFile(w.Log, "Authorization", "authorization", "Bearer ", "bearer ") {
		t.Errorf("the worker logged an Authorization header: %.200s", line)
	}
	// The corpus is the real thing: histories of all four providers, debug logs, errors.
	debugLines := len(grepFile(w.Log, "level=DEBUG"))
	if hist.Events < 100 || debugLines == 0 || !strings.Contains(hist.text(), "sec-badoauth") || len(errorTexts) != 2 ||
		oauthTarget.IssuedTokens() == 0 || !strings.Contains(metrics, `provider="sec-badtoken",status="401"`) {
		t.Errorf("weak corpus: %d events, %d debug lines, %d errors, %d tokens issued, metrics with 401: %v",
			hist.Events, debugLines, len(errorTexts), oauthTarget.IssuedTokens(), strings.Contains(metrics, `status="401"`))
	}
	// At rest the providers hold references, not secrets.
	var refs []string
	e.store.DB().SelectContext(e.ctx, &refs, `SELECT token || '|' || oauth_client_secret FROM providers ORDER BY name`)
	if strings.Join(refs, ",") != "|file:"+wrongFile+",env:IT_WRONG_TOKEN|,|file:"+secretFile+",env:IT_SECRET_TOKEN|" {
		t.Errorf("providers store %v, want the references", refs)
	}
	figures(t, "searched %d workflow runs (%d events, %d payloads), %d log lines (%d debug), %d bytes of metrics, %d errors, %d link errors and the database for 4 secrets and %d issued tokens: found 0",
		hist.Runs, hist.Events, len(hist.Payloads), strings.Count(logs, "\n"), debugLines, len(metrics), len(errorTexts), len(links), oauthTarget.IssuedTokens())
}

// fullError is an error with its causes, as an operator would read it.
func fullError(err error) string {
	var parts []string
	for ; err != nil; err = errors.Unwrap(err) {
		parts = append(parts, err.Error())
	}
	return strings.Join(parts, " | ")
}

// dumpDatabase returns every row of every table of the env's database as text.
func dumpDatabase(t *testing.T, e *env) string {
	t.Helper()
	var tables []string
	if err := e.store.DB().SelectContext(e.ctx, &tables, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var rows []string
		if err := e.store.DB().SelectContext(e.ctx, &rows, fmt.Sprintf(`SELECT t::text FROM %q t`, tbl)); err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		b.WriteString(strings.Join(rows, "\n"))
	}
	return b.String()
}

// TestPayloadCodecEncryptsHistory: with SCIMSYNC_CODEC_KEYS, a full sync's history holds no
// personal data (every payload is sealed, every failure message encoded); it cannot be
// read without the key, and reads through the codec or the worker's codec server
// (POST /codec/decode, as the Web UI calls it). After a key rotation (new key first) new
// payloads are sealed with the new key and the old ones stay readable.
func TestPayloadCodecEncryptsHistory(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	k1, k2 := make([]byte, 32), make([]byte, 32)
	rand.Read(k1)
	rand.Read(k2)
	keyEnv := []string{"IT_CODEC_K1=" + base64.StdEncoding.EncodeToString(k1), "IT_CODEC_K2=" + hex.EncodeToString(k2)}

	d := buildFlatDirectory(e, 60, 4)
	e.clearOutbox()
	e.provider("sealed", func(p *store.Provider) { p.BaseURL = e.target.URL })
	w := e.newWorkerProc(buildWorker(t), workerOptions{Env: append(keyEnv, "SCIMSYNC_CODEC_KEYS=k1=env:IT_CODEC_K1")})
	w.Start()
	id := e.scheduledFullSync(e.temporal, "sealed", time.Minute)

	// Without the key the result cannot be read: the plain client sees sealed payloads.
	var progress workflows.FullSyncProgress
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Minute)
	defer cancel()
	err := e.temporal.GetWorkflow(ctx, id, "").Get(ctx, &progress)
	if err == nil {
		t.Errorf("read the result without the key: %+v", progress)
	}
	// With the key it reads.
	c1 := codecClient(t, codec.Key{ID: "k1", Secret: k1})
	if err := c1.GetWorkflow(ctx, id, "").Get(ctx, &progress); err != nil || progress.Phase != workflows.PhaseDone || progress.Users.Created != len(d.users) {
		t.Fatalf("reading the result with the key: %v, %+v", err, progress)
	}
	if r := compareState(e.target, d, nil); !r.ok() {
		t.Errorf("remote state: %s", r)
	}
	// The starter reads the last run's counts with the keys, and only with them.
	t.Setenv("IT_CODEC_K1", base64.StdEncoding.EncodeToString(k1))
	status := func(keys string) *workflows.FullSyncProgress {
		t.Helper()
		r := e.starterDialing(map[string]string{"TEMPORAL_ADDRESS": testenv.Temporal(t).FrontendHostPort(),
			"SCIMSYNC_CODEC_KEYS": keys}, "status", "--provider", "sealed", "--json")
		var st struct {
			Providers []struct {
				Schedule *struct {
					LastRun *struct {
						Progress *workflows.FullSyncProgress `json:"progress"`
					} `json:"lastRun"`
				} `json:"schedule"`
			} `json:"providers"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || len(st.Providers) != 1 ||
			st.Providers[0].Schedule == nil || st.Providers[0].Schedule.LastRun == nil {
			t.Fatalf("starter status (keys %q): exit %d, %v\nstdout:\n%s\nstderr:\n%s", keys, r.code, err, r.stdout, r.stderr)
		}
		return st.Providers[0].Schedule.LastRun.Progress
	}
	if p := status("k1=env:IT_CODEC_K1"); p == nil || p.Users.Created != len(d.users) {
		t.Errorf("starter status with the key: last run progress %+v, want %d users created", p, len(d.users))
	}
	if p := status(""); p != nil {
		t.Errorf("starter status without the key read the sealed result: %+v", p)
	}

	// Rotate: k2 seals from now on, k1 still opens. A provider that fails (401) writes
	// failures to history.
	w.Stop()
	w.env = append(w.env, "SCIMSYNC_CODEC_KEYS=k2=env:IT_CODEC_K2,k1=env:IT_CODEC_K1")
	e.provider("sealed-bad", func(p *store.Provider) { p.BaseURL = e.target.URL; p.Token = "wrong-token" })
	w.Start()
	badID := e.scheduledFullSync(e.temporal, "sealed-bad", time.Minute)
	c2 := codecClient(t, codec.Key{ID: "k2", Secret: k2}, codec.Key{ID: "k1", Secret: k1})
	err = c2.GetWorkflow(ctx, badID, "").Get(ctx, nil)
	if err == nil || !strings.Contains(fullError(err), "provider sealed-bad") || !strings.Contains(fullError(err), "401") {
		t.Errorf("failing full sync read with the keys: %v, want the 401 provider error", err)
	}

	hist := exportHistories(t, e.temporal, e.queue)
	raw := hist.text()
	for _, u := range d.users[:20] {
		for _, s := range []string{u.Username, u.Email, u.Name} {
			if strings.Contains(raw, s) {
				t.Errorf("history shows %q in clear", s)
			}
		}
	}
	keyIDs := map[string]int{}
	for _, p := range hist.Payloads {
		if enc := string(p.Metadata["encoding"]); enc != codec.MetadataEncoding {
			t.Errorf("a payload has encoding %q: %.80s", enc, p.Data)
			continue
		}
		keyIDs[string(p.Metadata[codec.MetadataKeyID])]++
	}
	if keyIDs["k1"] == 0 || keyIDs["k2"] == 0 {
		t.Errorf("payloads by key id: %v, want both keys", keyIDs)
	}
	var encodedFailures int
	for _, f := range hist.Failures {
		if f.GetMessage() != "Encoded failure" || f.GetEncodedAttributes() == nil {
			t.Errorf("a failure in clear: %q", f.GetMessage())
		}
		encodedFailures++
	}
	if encodedFailures == 0 || strings.Contains(raw, "401 Unauthorized") {
		t.Errorf("%d failures in history; the 401 is in clear: %v", encodedFailures, strings.Contains(raw, "401 Unauthorized"))
	}

	// The worker's codec server decodes for the Web UI: payloads and failure attributes.
	var failureAttrs []*commonpb.Payload
	for _, f := range hist.Failures {
		failureAttrs = append(failureAttrs, f.GetEncodedAttributes())
	}
	decoded := decodeThroughCodecServer(t, "http://"+w.Addr+"/codec", append(hist.Payloads, failureAttrs...))
	var plain strings.Builder
	for _, p := range decoded {
		if string(p.Metadata["encoding"]) == codec.MetadataEncoding {
			t.Fatal("the codec server left a payload sealed")
		}
		plain.Write(p.Data)
	}
	for _, want := range []string{d.users[0].Username, d.users[0].Email, "401 Unauthorized", `"provider":"sealed-bad"`} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("decoded history lacks %q", want)
		}
	}
	// The Web UI's preflight is answered.
	req, _ := http.NewRequest(http.MethodOptions, "http://"+w.Addr+"/codec/decode", nil)
	req.Header.Set("Origin", codec.DefaultUIOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != codec.DefaultUIOrigin {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The schedule keeper reads the sealed schedule arguments: it does not rewrite them.
	if n := len(grepFile(w.Log, "full-sync schedule updated")); n > 0 {
		t.Errorf("the schedule keeper rewrote an unchanged schedule %d times", n)
	}
	figures(t, "%d runs, %d events, %d payloads all sealed (k1: %d, k2: %d), %d failures all encoded; decoded through /codec/decode",
		hist.Runs, hist.Events, len(hist.Payloads), keyIDs["k1"], keyIDs["k2"], encodedFailures)
}

// codecClient is a client of the shared dev server that encrypts with keys.
func codecClient(t *testing.T, keys ...codec.Key) client.Client {
	t.Helper()
	cc, err := codec.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	dc := codec.DataConverter(cc)
	c, err := client.Dial(client.Options{HostPort: testenv.Temporal(t).FrontendHostPort(), Namespace: testenv.Namespace,
		DataConverter: dc, FailureConverter: codec.FailureConverter(dc)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// decodeThroughCodecServer posts payloads to endpoint/decode as the Web UI does.
func decodeThroughCodecServer(t *testing.T, endpoint string, payloads []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", testenv.Namespace)
	req.Header.Set("Origin", codec.DefaultUIOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s/decode: %d %s", endpoint, resp.StatusCode, out)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal(out, &decoded); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	if len(decoded.Payloads) != len(payloads) {
		t.Fatalf("decoded %d payloads, sent %d", len(decoded.Payloads), len(payloads))
	}
	return decoded.Payloads
}
