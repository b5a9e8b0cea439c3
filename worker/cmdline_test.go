package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// The worker's command line as the flag package read it: long flags with one dash or two,
// flags over environment variables, the flag package's words for mistakes.
func TestParseConfigReadsFlagsWithOneDashOrTwo(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://db/scimsync", "SCIMSYNC_INSTALLATION_SECRET": "s",
		"SCIMSYNC_LOG_LEVEL": "warn", "SCIMSYNC_MAX_ACTIVITIES": "3"}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig(strings.Fields("-http-addr :1234 --log-format=json -request-timeout 5s -no-change-feed --max-activities 7"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":1234" || cfg.LogFormat != "json" || cfg.RequestTimeout != 5*time.Second || !cfg.NoChangeFeed ||
		cfg.MaxConcurrentActivities != 7 || cfg.LogLevel != "warn" || cfg.DatabaseURL != "postgres://db/scimsync" {
		t.Errorf("config %+v", cfg)
	}
	for args, want := range map[string]string{
		"-bogus":                "flag provided but not defined: -bogus",
		"--max-activities x":    `invalid value "x" for flag -max-activities: parse error`,
		"-temporal-tls=perhaps": `invalid boolean value "perhaps" for -temporal-tls: parse error`,
		"-log-level":            "flag needs an argument: -log-level",
		"extra -no-change-feed": "unexpected arguments: extra",
	} {
		if _, err := ParseConfig(strings.Fields(args), getenv); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		if _, err := ParseConfig([]string{h}, getenv); !errors.Is(err, pflag.ErrHelp) {
			t.Errorf("%s: %v, want pflag.ErrHelp", h, err)
		}
	}
}
