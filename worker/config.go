package worker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/internal/cli"
	"github.com/scimsync/scimsync/secretref"
	"github.com/scimsync/scimsync/workflows"
)

const workerHelp = `worker runs a scimsync worker: it syncs directory changes to every enabled SCIM provider
as they happen and runs each provider's full syncs. Run as many as you like against the
same database and Temporal namespace.

Every setting is a flag and an environment variable (in parentheses); flags win.
Exit codes: 0 after a clean stop (SIGINT, SIGTERM), 1 when the worker fails, 2 when the
configuration is wrong.`

// Config is the worker's configuration. Every field has a flag and an environment
// variable; flags win.
type Config struct {
	DatabaseURL string // DATABASE_URL; required

	TemporalAddress   string // TEMPORAL_ADDRESS, default localhost:7233
	TemporalNamespace string // TEMPORAL_NAMESPACE, default "default"
	// TemporalAPIKey (TEMPORAL_API_KEY, a secret reference) authenticates to Temporal Cloud
	// and turns TLS on.
	TemporalAPIKey string
	// TemporalTLSCert and TemporalTLSKey (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY) are files of a
	// client certificate for mTLS; TemporalTLS (TEMPORAL_TLS) turns TLS on without one.
	TemporalTLSCert string
	TemporalTLSKey  string
	TemporalTLS     bool

	// TaskQueue (SCIMSYNC_TASK_QUEUE) is the task queue of the installation's workflows and
	// activities. Empty, the default, means workflows.DefaultTaskQueue of the installation
	// (scimsync-<installation id>); a configured one is used as configured, and must not be
	// another installation's.
	TaskQueue string

	// InstallationSecret (SCIMSYNC_INSTALLATION_SECRET, a literal or an env:/file:
	// reference) derives the hashed user ids sent as externalId. Required: changing it
	// changes every user's externalId.
	InstallationSecret string

	HTTPAddr  string // SCIMSYNC_HTTP_ADDR, /healthz and /metrics; default :9464, "" disables
	LogFormat string // SCIMSYNC_LOG_FORMAT: text (default) or json
	LogLevel  string // SCIMSYNC_LOG_LEVEL: debug, info (default), warn, error

	// MaxConcurrentActivities bounds the activities one worker runs at once
	// (SCIMSYNC_MAX_ACTIVITIES, default 20).
	MaxConcurrentActivities int
	// WriteConcurrency bounds the SCIM requests one activity has in flight
	// (SCIMSYNC_WRITE_CONCURRENCY, default 8).
	WriteConcurrency int
	// RequestTimeout bounds each SCIM request (SCIMSYNC_REQUEST_TIMEOUT, default 30s).
	RequestTimeout time.Duration
	// ScheduleInterval is how often provider schedules are reconciled
	// (SCIMSYNC_SCHEDULE_INTERVAL, default 30s).
	ScheduleInterval time.Duration
	// NoChangeFeed disables the outbox relay on this worker (SCIMSYNC_NO_CHANGE_FEED).
	NoChangeFeed bool
	// SummaryNames (SCIMSYNC_SUMMARY_NAMES, default true) puts the username or group name in
	// the summary of every ObjectSync the worker starts; false shows the object id instead.
	// Summaries are payloads: the codec (CodecKeys) encrypts them.
	SummaryNames bool
	// EscrowDelays (SCIMSYNC_ESCROW_DELAYS, default 1m,10m,1h; "none": no escrow retries)
	// is how long after its n-th failed write in a row an object is retried on its own;
	// past the last, only full syncs retry it. EscrowInterval (SCIMSYNC_ESCROW_INTERVAL,
	// default 15s; 0 too) is how often the worker looks for due retries. See escrow.go.
	EscrowDelays    []time.Duration
	EscrowInterval  time.Duration
	escrowDelaysErr error

	// CodecKeys (SCIMSYNC_CODEC_KEYS) turns on payload encryption: comma-separated
	// id=reference pairs of 32-byte AES keys (base64 or hex), the sealing key first, e.g.
	// "k2=env:SCIMSYNC_KEY_2,k1=file:/run/secrets/k1". Every worker and starter of a
	// namespace needs the same keys. See package codec.
	CodecKeys string
	// CodecOrigins (SCIMSYNC_CODEC_CORS_ORIGINS) are the Web UI origins allowed to call the
	// codec server at <HTTPAddr>/codec; default http://localhost:8233.
	CodecOrigins string
}

// ParseConfig reads the configuration from args (without the program name) and the
// environment: the worker's command line, which cobra parses. After -h, which prints the
// help on standard output, it returns pflag.ErrHelp.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c Config
	cmd := &cobra.Command{
		Use: "worker [flags]", Long: workerHelp, SilenceErrors: true, SilenceUsage: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
			}
			return nil
		},
		Run: func(*cobra.Command, []string) {}, // Main runs the worker with the configuration
	}
	cmd.SetFlagErrorFunc(cli.FlagError)
	fs := cmd.Flags()
	// Settings that may hold secrets take their environment value after being defined, so
	// that the usage message (-h, a bad flag) never prints it as a default.
	secret := func(p *string, name, envName, usage string) {
		fs.StringVar(p, name, "", usage)
		*p = getenv(envName)
	}
	secret(&c.DatabaseURL, "database-url", "DATABASE_URL", "PostgreSQL URL of the scimsync database (DATABASE_URL)")
	fs.StringVar(&c.TemporalAddress, "temporal-address", env("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fs.StringVar(&c.TemporalNamespace, "temporal-namespace", env("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (TEMPORAL_NAMESPACE)")
	secret(&c.TemporalAPIKey, "temporal-api-key", "TEMPORAL_API_KEY", "Temporal Cloud API key, literal or env:/file: reference (TEMPORAL_API_KEY)")
	fs.StringVar(&c.TemporalTLSCert, "temporal-tls-cert", env("TEMPORAL_TLS_CERT", ""), "client certificate file for Temporal mTLS (TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TemporalTLSKey, "temporal-tls-key", env("TEMPORAL_TLS_KEY", ""), "client key file for Temporal mTLS (TEMPORAL_TLS_KEY)")
	fs.BoolVar(&c.TemporalTLS, "temporal-tls", boolEnv(getenv("TEMPORAL_TLS")), "connect to Temporal with TLS (TEMPORAL_TLS)")
	fs.StringVar(&c.TaskQueue, "task-queue", env("SCIMSYNC_TASK_QUEUE", ""), "task queue; empty: "+workflows.DefaultTaskQueue("<installation id>")+", the installation's own (SCIMSYNC_TASK_QUEUE)")
	secret(&c.InstallationSecret, "installation-secret", "SCIMSYNC_INSTALLATION_SECRET", "secret for hashed user ids, literal or env:/file: reference (SCIMSYNC_INSTALLATION_SECRET)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("SCIMSYNC_HTTP_ADDR", ":9464"), "address of /healthz and /metrics; empty disables (SCIMSYNC_HTTP_ADDR)")
	fs.StringVar(&c.LogFormat, "log-format", env("SCIMSYNC_LOG_FORMAT", "text"), "text or json (SCIMSYNC_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("SCIMSYNC_LOG_LEVEL", "info"), "debug, info, warn or error (SCIMSYNC_LOG_LEVEL)")
	maxActs, _ := strconv.Atoi(env("SCIMSYNC_MAX_ACTIVITIES", "20"))
	fs.IntVar(&c.MaxConcurrentActivities, "max-activities", maxActs, "activities run at once (SCIMSYNC_MAX_ACTIVITIES)")
	writes, _ := strconv.Atoi(env("SCIMSYNC_WRITE_CONCURRENCY", "8"))
	fs.IntVar(&c.WriteConcurrency, "write-concurrency", writes, "SCIM requests in flight per activity (SCIMSYNC_WRITE_CONCURRENCY)")
	timeout, _ := time.ParseDuration(env("SCIMSYNC_REQUEST_TIMEOUT", "30s"))
	fs.DurationVar(&c.RequestTimeout, "request-timeout", timeout, "timeout of each SCIM request (SCIMSYNC_REQUEST_TIMEOUT)")
	sched, _ := time.ParseDuration(env("SCIMSYNC_SCHEDULE_INTERVAL", "30s"))
	fs.DurationVar(&c.ScheduleInterval, "schedule-interval", sched, "how often provider schedules are reconciled (SCIMSYNC_SCHEDULE_INTERVAL)")
	fs.BoolVar(&c.NoChangeFeed, "no-change-feed", boolEnv(getenv("SCIMSYNC_NO_CHANGE_FEED")), "do not relay directory changes on this worker (SCIMSYNC_NO_CHANGE_FEED)")
	summaryNames, namesErr := strconv.ParseBool(env("SCIMSYNC_SUMMARY_NAMES", "true"))
	fs.BoolVar(&c.SummaryNames, "summary-names", summaryNames || namesErr != nil, "show usernames and group names in the summaries of object syncs; false: object ids (SCIMSYNC_SUMMARY_NAMES)")
	c.EscrowDelays, c.escrowDelaysErr = ParseEscrowDelays(env("SCIMSYNC_ESCROW_DELAYS", "1m,10m,1h"))
	fs.Func("escrow-delays", "retry an object in error after these delays, then only with full syncs; none: never (SCIMSYNC_ESCROW_DELAYS, default 1m,10m,1h)", func(v string) error {
		c.EscrowDelays, c.escrowDelaysErr = ParseEscrowDelays(v)
		return c.escrowDelaysErr
	})
	escrowEvery, _ := time.ParseDuration(env("SCIMSYNC_ESCROW_INTERVAL", DefaultEscrowInterval.String()))
	fs.DurationVar(&c.EscrowInterval, "escrow-interval", escrowEvery, "how often due escrow retries are looked for (SCIMSYNC_ESCROW_INTERVAL)")
	secret(&c.CodecKeys, "codec-keys", "SCIMSYNC_CODEC_KEYS", "encrypt payloads: id=reference list of AES-256 keys, sealing key first (SCIMSYNC_CODEC_KEYS)")
	fs.StringVar(&c.CodecOrigins, "codec-cors-origins", env("SCIMSYNC_CODEC_CORS_ORIGINS", codec.DefaultUIOrigin), "Web UI origins allowed to call /codec (SCIMSYNC_CODEC_CORS_ORIGINS)")
	cmd.SetArgs(cli.GoFlagArgs(cmd, args))
	if err := cmd.Execute(); err != nil {
		return Config{}, err
	}
	if help, _ := fs.GetBool("help"); help {
		return Config{}, pflag.ErrHelp
	}
	if namesErr != nil {
		return Config{}, fmt.Errorf("SCIMSYNC_SUMMARY_NAMES %q: use true or false", getenv("SCIMSYNC_SUMMARY_NAMES"))
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work, saying how to fix it.
func (c Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL (or -database-url) is required, e.g. postgres://user@host:5432/scimsync"))
	}
	if c.InstallationSecret == "" {
		errs = append(errs, errors.New("SCIMSYNC_INSTALLATION_SECRET (or -installation-secret) is required: a long random value, kept forever (it derives every user's externalId)"))
	} else if _, err := secretref.Resolve(c.InstallationSecret); err != nil {
		errs = append(errs, fmt.Errorf("installation secret: %w", err))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log format %q: use text or json", c.LogFormat))
	}
	if c.MaxConcurrentActivities < 1 || c.WriteConcurrency < 1 {
		errs = append(errs, errors.New("max-activities and write-concurrency must be at least 1"))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("request-timeout must be positive, e.g. 30s"))
	}
	if c.escrowDelaysErr != nil {
		errs = append(errs, c.escrowDelaysErr)
	}
	if c.EscrowInterval < 0 {
		errs = append(errs, errors.New("escrow-interval (SCIMSYNC_ESCROW_INTERVAL) must not be negative, e.g. 15s"))
	}
	if _, err := c.payloadCodec(); err != nil {
		errs = append(errs, err)
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		errs = append(errs, errors.New("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together"))
	}
	return errors.Join(errs...)
}

func boolEnv(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}

// maxEscrowDelays bounds the escrow's schedule: past it, full syncs retry.
const maxEscrowDelays = 20

// ParseEscrowDelays reads an escrow schedule: comma-separated durations, each at least as
// long as the one before (a retry never comes sooner than the last), or "none".
func ParseEscrowDelays(v string) ([]time.Duration, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "none") {
		return []time.Duration{}, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxEscrowDelays {
		return nil, fmt.Errorf("escrow delays %q: at most %d delays; past the last, full syncs retry", v, maxEscrowDelays)
	}
	delays := make([]time.Duration, 0, len(parts))
	for _, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("escrow delays %q: %q is not a positive duration; write e.g. 1m,10m,1h, or none", v, p)
		}
		if n := len(delays); n > 0 && d < delays[n-1] {
			return nil, fmt.Errorf("escrow delays %q: %s is shorter than %s before it; each retry waits at least as long as the one before", v, d, delays[n-1])
		}
		delays = append(delays, d)
	}
	return delays, nil
}
