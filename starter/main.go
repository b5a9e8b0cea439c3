package starter

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// Exit codes of every command.
const (
	ExitOK      = 0 // the command did what was asked
	ExitFailure = 1 // it could not: a sync failed, a service is unreachable, ...
	ExitUsage   = 2 // the command line or a configuration file is wrong; nothing was done
)

// Deps are what commands use. The zero value works: every command then opens what it
// needs from the global flags and the environment and closes it when it returns.
type Deps struct {
	// Getenv reads the environment for the defaults of the global flags; nil means
	// os.Getenv. Secret references (env:NAME) are always resolved from the process
	// environment, like the worker does.
	Getenv func(string) string
	// Store, when set, is used instead of opening DATABASE_URL; commands do not close it.
	Store *store.Store
	// Temporal, when set, is used instead of dialing TEMPORAL_ADDRESS; commands do not
	// close it.
	Temporal client.Client
	// HTTPClient, when set, is used for the SCIM requests of in-process syncs to providers
	// that verify TLS (tests use it to trust their own certificates).
	HTTPClient *http.Client
	// PollInterval is how often waiting commands poll Temporal; 0 means one second.
	PollInterval time.Duration

	// globals holds the global flags parsed by Main, the defaults of every command's flags.
	globals *Config
}

// Config is the configuration shared by every command: global flags, with environment
// variables as defaults (the same as the worker's).
type Config struct {
	DatabaseURL        string // --database-url, DATABASE_URL
	TemporalAddress    string // --temporal-address, TEMPORAL_ADDRESS (localhost:7233)
	TemporalNamespace  string // --temporal-namespace, TEMPORAL_NAMESPACE (default)
	TemporalAPIKey     string // --temporal-api-key, TEMPORAL_API_KEY (a secret reference)
	TemporalTLSCert    string // --temporal-tls-cert, TEMPORAL_TLS_CERT
	TemporalTLSKey     string // --temporal-tls-key, TEMPORAL_TLS_KEY
	TemporalTLS        bool   // --temporal-tls, TEMPORAL_TLS
	TaskQueue          string // --task-queue, SCIMSYNC_TASK_QUEUE ("": the installation's default)
	InstallationSecret string // --installation-secret, SCIMSYNC_INSTALLATION_SECRET
	// CodecKeys (--codec-keys, SCIMSYNC_CODEC_KEYS) are the workers' payload encryption
	// keys: with them the starter reads the results and progress the workers sealed.
	CodecKeys string
}

// configFromEnv returns the defaults of the global flags.
func configFromEnv(getenv func(string) string) Config {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	tls, _ := strconv.ParseBool(getenv("TEMPORAL_TLS"))
	return Config{
		DatabaseURL:        env("DATABASE_URL", ""),
		TemporalAddress:    env("TEMPORAL_ADDRESS", "localhost:7233"),
		TemporalNamespace:  env("TEMPORAL_NAMESPACE", "default"),
		TemporalAPIKey:     env("TEMPORAL_API_KEY", ""),
		TemporalTLSCert:    env("TEMPORAL_TLS_CERT", ""),
		TemporalTLSKey:     env("TEMPORAL_TLS_KEY", ""),
		TemporalTLS:        tls,
		TaskQueue:          env("SCIMSYNC_TASK_QUEUE", ""),
		InstallationSecret: env("SCIMSYNC_INSTALLATION_SECRET", ""),
		CodecKeys:          env("SCIMSYNC_CODEC_KEYS", ""),
	}
}

// globalFlagNames are the flags every command accepts besides its own.
var globalFlagNames = map[string]bool{
	"database-url": true, "temporal-address": true, "temporal-namespace": true, "temporal-api-key": true,
	"temporal-tls-cert": true, "temporal-tls-key": true, "temporal-tls": true, "task-queue": true,
	"installation-secret": true, "codec-keys": true,
}

// defineGlobals registers the global flags on fs with c's values as defaults.
func (c *Config) defineGlobals(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL of the scimsync database (DATABASE_URL)")
	fs.StringVar(&c.TemporalAddress, "temporal-address", c.TemporalAddress, "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fs.StringVar(&c.TemporalNamespace, "temporal-namespace", c.TemporalNamespace, "Temporal namespace (TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.TemporalAPIKey, "temporal-api-key", c.TemporalAPIKey, "Temporal Cloud API key, env:/file: reference (TEMPORAL_API_KEY)")
	fs.StringVar(&c.TemporalTLSCert, "temporal-tls-cert", c.TemporalTLSCert, "client certificate file for Temporal mTLS (TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TemporalTLSKey, "temporal-tls-key", c.TemporalTLSKey, "client key file for Temporal mTLS (TEMPORAL_TLS_KEY)")
	fs.BoolVar(&c.TemporalTLS, "temporal-tls", c.TemporalTLS, "connect to Temporal with TLS (TEMPORAL_TLS)")
	fs.StringVar(&c.TaskQueue, "task-queue", c.TaskQueue, "task queue of the scimsync workers; empty: the installation's own, "+
		workflows.DefaultTaskQueue("<installation id>")+" (SCIMSYNC_TASK_QUEUE)")
	fs.StringVar(&c.InstallationSecret, "installation-secret", c.InstallationSecret,
		"installation secret for hashed user ids, literal or env:/file: reference (SCIMSYNC_INSTALLATION_SECRET)")
	fs.StringVar(&c.CodecKeys, "codec-keys", c.CodecKeys,
		"the workers' payload encryption keys, id=env:/file: reference list (SCIMSYNC_CODEC_KEYS)")
}

// worker returns the worker configuration that worker.Dial understands.
func (c Config) worker() worker.Config {
	return worker.Config{
		DatabaseURL: c.DatabaseURL, TemporalAddress: c.TemporalAddress, TemporalNamespace: c.TemporalNamespace,
		TemporalAPIKey: c.TemporalAPIKey, TemporalTLSCert: c.TemporalTLSCert, TemporalTLSKey: c.TemporalTLSKey,
		TemporalTLS: c.TemporalTLS, TaskQueue: c.TaskQueue, CodecKeys: c.CodecKeys,
	}
}

func (d *Deps) getenv(name string) string {
	if d.Getenv != nil {
		return d.Getenv(name)
	}
	return os.Getenv(name)
}

// config returns the global configuration: what Main parsed, else the environment.
func (d *Deps) config() Config {
	if d.globals != nil {
		return *d.globals
	}
	return configFromEnv(d.getenv)
}

func (d *Deps) pollInterval() time.Duration {
	if d.PollInterval > 0 {
		return d.PollInterval
	}
	return time.Second
}

// command is one starter command.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, d *Deps, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"migrate", "apply the database migrations", Migrate},
	{"apply", "apply a configuration file (providers, mappings, applications, bindings)", Apply},
	{"import", "import users, groups and memberships from a JSON or CSV file", Import},
	{"sync", "sync one user or group now, printing every step and request", Sync},
	{"full-sync", "start a provider's full sync through its schedule", FullSync},
	{"plan", "show what the next full sync would change, sending only GETs", Plan},
	{"status", "show providers, schedules, running syncs, links and errors", Status},
	{"history", "show one user's or group's past syncs from Temporal, newest first", History},
	{"outbox", "list, retry or drop the changes Temporal refused (outbox list|retry|drop)", Outbox},
	{"mapping", "test a provider's property mappings on one object (mapping test)", Mapping},
	{"providers", "list providers", Providers},
	{"mappings", "list property mappings", Mappings},
}

const mainUsage = `usage: starter [global flags] COMMAND [flags] [args]

starter is scimsync's operator CLI. It works on the scimsync database and, for syncs and
status, the Temporal namespace the workers use. Run "starter COMMAND --help" for a command.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error; plan: 3 when the next full
sync would change something.
`

// Main runs the command line args (without the program name) and returns the exit code.
// Global flags may come before the command or among its flags.
func Main(ctx context.Context, d *Deps, args []string, stdout, stderr io.Writer) int {
	if d == nil {
		d = &Deps{}
	}
	cfg := d.config()
	fs := flag.NewFlagSet("starter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.defineGlobals(fs)
	usage := func(w io.Writer) {
		fmt.Fprint(w, mainUsage)
		fmt.Fprintln(w, "\ncommands:")
		for _, c := range commands {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
		fmt.Fprintln(w, "\nglobal flags:")
		printFlags(w, fs, func(string) bool { return true })
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return ExitOK
		}
		fmt.Fprintf(stderr, "starter: %v\n\n", err)
		usage(stderr)
		return ExitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			return Main(ctx, d, []string{rest[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return ExitOK
	}
	sub := *d
	sub.globals = &cfg
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, &sub, rest[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "starter: unknown command %q\n\n", name)
	usage(stderr)
	return ExitUsage
}

// cmdLine parses one command's flags: its own plus the global ones.
type cmdLine struct {
	name  string
	usage string // the synopsis after "starter "
	help  string // what the command does
	fs    *flag.FlagSet
	cfg   Config
}

func newCmdLine(d *Deps, name, usage, help string) *cmdLine {
	cl := &cmdLine{name: name, usage: usage, help: help, fs: flag.NewFlagSet(name, flag.ContinueOnError), cfg: d.config()}
	cl.fs.SetOutput(io.Discard)
	cl.cfg.defineGlobals(cl.fs)
	return cl
}

func (cl *cmdLine) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: starter %s\n\n%s\n", cl.usage, strings.TrimSpace(cl.help))
	var own bool
	cl.fs.VisitAll(func(f *flag.Flag) { own = own || !globalFlagNames[f.Name] })
	if own {
		fmt.Fprintln(w, "\nflags:")
		printFlags(w, cl.fs, func(name string) bool { return !globalFlagNames[name] })
	}
	fmt.Fprintln(w, "\nGlobal flags (see starter --help) are accepted too.")
}

// parse parses args, flags and positional arguments in any order. It returns the
// positional arguments, or an exit code >= 0 when the command must stop (help: 0, bad
// flags or arity: 2). nargs bounds the positional arguments: min and max (-1: any).
func (cl *cmdLine) parse(args []string, minArgs, maxArgs int, stdout, stderr io.Writer) ([]string, int) {
	var pos []string
	for {
		if err := cl.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				cl.printUsage(stdout)
				return nil, ExitOK
			}
			return nil, cl.usageError(stderr, err.Error())
		}
		args = cl.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		if len(pos) < minArgs {
			return nil, cl.usageError(stderr, "missing arguments")
		}
		return nil, cl.usageError(stderr, "unexpected arguments: "+strings.Join(pos[maxArgs:], " "))
	}
	return pos, -1
}

func (cl *cmdLine) usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "starter %s: %s\n\n", cl.name, msg)
	cl.printUsage(stderr)
	return ExitUsage
}

// printFlags prints the flags of fs that keep selects, like flag.PrintDefaults but with
// double dashes.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(string) bool) {
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n      " + usage
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && !strings.Contains(f.Name, "secret") &&
			!strings.Contains(f.Name, "key") && f.Name != "database-url" {
			line += " (default " + def + ")"
		}
		lines = append(lines, line)
	})
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// usageErr is an error in the command line or a configuration file: exit code 2.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// exitCode prints err (when not nil) under the command's name and returns its exit code.
func exitCode(stderr io.Writer, name string, err error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "starter %s: %v\n", name, err)
	var ue *usageErr
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// session holds what one command opened, to close it when the command ends.
type session struct {
	d      *Deps
	cfg    Config
	stderr io.Writer

	st          *store.Store
	ownStore    bool
	tc          client.Client
	ownTemporal bool
}

func newSession(d *Deps, cfg Config, stderr io.Writer) *session {
	return &session{d: d, cfg: cfg, stderr: stderr}
}

// parseAndOpenStore parses a command line that takes no positional arguments and opens
// the store. When code >= 0 the command must return it; otherwise the command closes sess.
func (cl *cmdLine) parseAndOpenStore(ctx context.Context, d *Deps, args []string, stdout, stderr io.Writer) (sess *session, st *store.Store, code int) {
	if _, code := cl.parse(args, 0, 0, stdout, stderr); code >= 0 {
		return nil, nil, code
	}
	sess = newSession(d, cl.cfg, stderr)
	st, err := sess.store(ctx)
	if err != nil {
		sess.close()
		return nil, nil, exitCode(stderr, cl.name, err)
	}
	return sess, st, -1
}

func (s *session) close() {
	if s.ownStore && s.st != nil {
		s.st.Close()
	}
	if s.ownTemporal && s.tc != nil {
		s.tc.Close()
	}
}

// store returns the store: Deps.Store, or one opened from DATABASE_URL.
func (s *session) store(ctx context.Context) (*store.Store, error) {
	if s.st != nil {
		return s.st, nil
	}
	if s.d.Store != nil {
		s.st = s.d.Store
		return s.st, nil
	}
	if s.cfg.DatabaseURL == "" {
		return nil, usageErrorf("DATABASE_URL (or --database-url) is required, e.g. postgres://user@host:5432/scimsync")
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := store.Open(octx, s.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	s.st, s.ownStore = st, true
	return st, nil
}

// providerFlag defines a command's --provider flag, whose value session.provider resolves:
// it may be left out when there is exactly one provider.
func (cl *cmdLine) providerFlag(usage string) *string {
	name := new(string)
	cl.fs.StringVar(name, "provider", "", usage+" (may be left out when there is exactly one provider)")
	return name
}

// provider opens the store and finds the named provider in it; when there is none, the
// error says where the names are listed. An empty name (--provider left out) means the
// only provider there is; with none or several it is a usage error that lists them.
func (s *session) provider(ctx context.Context, name string) (*store.Store, store.Provider, error) {
	st, err := s.store(ctx)
	if err != nil {
		return nil, store.Provider{}, err
	}
	if name == "" {
		ps, err := st.Providers(ctx)
		if err != nil {
			return st, store.Provider{}, err
		}
		p, err := onlyProvider(ps)
		return st, p, err
	}
	p, err := st.Provider(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return st, p, fmt.Errorf("provider %q does not exist (see starter providers)", name)
	}
	return st, p, err
}

// onlyProvider returns the one provider of ps; with none or several, a usage error that
// lists them.
func onlyProvider(ps []store.Provider) (store.Provider, error) {
	switch len(ps) {
	case 1:
		return ps[0], nil
	case 0:
		return store.Provider{}, usageErrorf("--provider is required, and there are no providers: define one in a configuration file and run starter apply -f FILE")
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return store.Provider{}, usageErrorf("--provider is required when there are several providers; there are %d: %s", len(ps), strings.Join(names, ", "))
}

// temporal returns the Temporal client: Deps.Temporal, or one dialed like the worker does.
func (s *session) temporal(ctx context.Context) (client.Client, error) {
	if s.tc != nil {
		return s.tc, nil
	}
	if s.d.Temporal != nil {
		s.tc = s.d.Temporal
		return s.tc, nil
	}
	logger := slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := worker.Dial(dctx, s.cfg.worker(), logger)
	if err != nil {
		return nil, err
	}
	s.tc, s.ownTemporal = c, true
	return c, nil
}

// installation returns the installation of the store, in the short form of IDs.
func (s *session) installation(ctx context.Context) (workflows.Installation, error) {
	st, err := s.store(ctx)
	if err != nil {
		return "", err
	}
	inst, err := st.Installation(ctx)
	if err != nil {
		return "", err
	}
	return workflows.NewInstallation(inst.ID)
}

// taskQueue is the workers' task queue: as configured, else the installation's default.
func (s *session) taskQueue(inst workflows.Installation) string {
	if s.cfg.TaskQueue == "" {
		return workflows.DefaultTaskQueue(inst)
	}
	return s.cfg.TaskQueue
}
