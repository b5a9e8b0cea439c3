package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestCodecKeysConfig(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	env := map[string]string{
		"DATABASE_URL": "postgres://x/y", "SCIMSYNC_INSTALLATION_SECRET": "s",
		"SCIMSYNC_CODEC_KEYS": "new=env:CODEC_KEY_NEW, old=" + key,
	}
	t.Setenv("CODEC_KEY_NEW", key)
	cfg, err := ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	pc, err := cfg.payloadCodec()
	if err != nil || pc == nil || strings.Join(pc.KeyIDs(), ",") != "new,old" {
		t.Fatalf("codec = %v, %v", pc, err)
	}
	if h, err := codecServer(cfg); err != nil || h == nil {
		t.Errorf("codec server = %v, %v", h, err)
	}

	env["SCIMSYNC_CODEC_KEYS"] = "k1=env:CODEC_KEY_MISSING"
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil ||
		!strings.Contains(err.Error(), "SCIMSYNC_CODEC_KEYS: codec: key k1: environment variable CODEC_KEY_MISSING is not set") {
		t.Errorf("missing key: %v", err)
	}
	env["SCIMSYNC_CODEC_KEYS"] = "k1=" + key[:10]
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), key[:10]) {
		t.Errorf("short key: %v (must fail without showing the key)", err)
	}

	delete(env, "SCIMSYNC_CODEC_KEYS")
	cfg, err = ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if pc, err := cfg.payloadCodec(); pc != nil || err != nil {
		t.Errorf("without keys: %v, %v", pc, err)
	}
}

func TestSummaryNamesConfig(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x/y", "SCIMSYNC_INSTALLATION_SECRET": "s"}
	parse := func(args ...string) (Config, error) {
		return ParseConfig(args, func(k string) string { return env[k] })
	}
	if cfg, err := parse(); err != nil || !cfg.SummaryNames {
		t.Errorf("default: names %v, %v; want names in summaries", cfg.SummaryNames, err)
	}
	env["SCIMSYNC_SUMMARY_NAMES"] = "false"
	if cfg, err := parse(); err != nil || cfg.SummaryNames {
		t.Errorf("SCIMSYNC_SUMMARY_NAMES=false: names %v, %v", cfg.SummaryNames, err)
	}
	if cfg, err := parse("-summary-names=true"); err != nil || !cfg.SummaryNames {
		t.Errorf("the flag over the variable: names %v, %v", cfg.SummaryNames, err)
	}
	env["SCIMSYNC_SUMMARY_NAMES"] = "ids"
	if _, err := parse(); err == nil || err.Error() != `SCIMSYNC_SUMMARY_NAMES "ids": use true or false` {
		t.Errorf("bad value: %v", err)
	}
}

func TestPlaintextOffHost(t *testing.T) {
	const keys = "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	for _, tc := range []struct {
		address, keys string
		warn          bool
	}{
		{"localhost:7233", "", false},
		{"LOCALHOST:7233", "", false},
		{"localhost.:7233", "", false},
		{"127.0.0.1:7233", "", false},
		{"127.8.9.10:7233", "", false},
		{"[::1]:7233", "", false},
		{"::1", "", false},
		{"[::ffff:127.0.0.1]:7233", "", false},
		{":7233", "", false},
		{"localhost", "", false},
		{"temporal:7233", "", true},
		{"10.0.0.5:7233", "", true},
		{"[2001:db8::1]:7233", "", true},
		{"0.0.0.0:7233", "", true},
		{"localhost.example.com:7233", "", true},
		{"ns.acct.tmprl.cloud:7233", "", true},
		{"ns.acct.tmprl.cloud:7233", keys, false},
		{"temporal:7233", "  ", true}, // blank is no key
	} {
		cfg := Config{TemporalAddress: tc.address, CodecKeys: tc.keys}
		if got := plaintextOffHost(cfg); got != tc.warn {
			t.Errorf("plaintextOffHost(%q, keys %q) = %v, want %v", tc.address, tc.keys, got, tc.warn)
		}
	}
}

// TestWorkerWarnsAtStartWhenPayloadsGoUnencryptedOffHost runs the worker's start far enough
// to log (PostgreSQL is unreachable, so it stops right after) and reads what it logged.
func TestWorkerWarnsAtStartWhenPayloadsGoUnencryptedOffHost(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	start := func(address, keys string) string {
		t.Helper()
		env := map[string]string{
			"DATABASE_URL":                 "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
			"SCIMSYNC_INSTALLATION_SECRET": "installation-secret-value",
			"TEMPORAL_ADDRESS":             address,
			"SCIMSYNC_CODEC_KEYS":          keys,
			"SCIMSYNC_LOG_FORMAT":          "json",
		}
		cfg, err := ParseConfig(nil, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, nil))
		if err := Run(context.Background(), cfg, logger, nil); err == nil || !strings.Contains(err.Error(), "store: connect") {
			t.Fatalf("Run without PostgreSQL: %v, want a connection error", err)
		}
		return logs.String()
	}

	logs := start("temporal.internal:7233", "")
	var warnings []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "WARN" && strings.Contains(rec["msg"].(string), "unencrypted") {
			warnings = append(warnings, rec)
		}
	}
	if len(warnings) != 1 || warnings[0]["temporal"] != "temporal.internal:7233" ||
		!strings.Contains(warnings[0]["msg"].(string), "SCIMSYNC_CODEC_KEYS") {
		t.Fatalf("want one warning naming the address and SCIMSYNC_CODEC_KEYS, got %v in:\n%s", warnings, logs)
	}
	if strings.Contains(logs, "installation-secret-value") {
		t.Errorf("the log shows the installation secret:\n%s", logs)
	}

	for _, tc := range []struct{ address, keys string }{
		{"localhost:7233", ""},
		{"127.0.0.1:7233", ""},
		{"[::1]:7233", ""},
		{"temporal.internal:7233", "k1=" + key},
	} {
		logs := start(tc.address, tc.keys)
		if strings.Contains(logs, "unencrypted") {
			t.Errorf("%s with keys %q: warned:\n%s", tc.address, tc.keys, logs)
		}
		if strings.Contains(logs, key) {
			t.Errorf("the log shows the codec key:\n%s", logs)
		}
	}
}
