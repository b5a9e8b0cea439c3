package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/internal/cli"
	"github.com/scimsync/scimsync/object"
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
	// SummaryNames (SCIMSYNC_SUMMARY_NAMES, as the workers have it; "" means true): whether
	// `sync --via-temporal` puts the object's name in the summary of an ObjectSync it starts.
	SummaryNames string
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
		SummaryNames:       env("SCIMSYNC_SUMMARY_NAMES", ""),
	}
}

// defineGlobals registers the global flags on fs with c's values as defaults.
func (c *Config) defineGlobals(fs *pflag.FlagSet) {
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

// command is one starter command, as starter --help lists it.
type command struct {
	name    string
	summary string
	// declare declares the command's synopsis, help, positional arguments and flags on cl,
	// and returns what runs the command once they are parsed.
	declare func(cl *cmdLine) runFunc
}

// runFunc runs a command whose command line is parsed; pos are its positional arguments.
type runFunc func(ctx context.Context, d *Deps, pos []string, stdout, stderr io.Writer) int

var commands = []command{
	{"migrate", "apply the database migrations", migrateCommand},
	{"apply", "apply a configuration file (providers, mappings, applications, bindings)", applyCommand},
	{"import", "import users, groups and memberships from a JSON or CSV file", importCommand},
	{"sync", "sync one user or group now, printing every step and request", syncCommand},
	{"full-sync", "start a provider's full sync through its schedule", fullSyncCommand},
	{"plan", "show what the next full sync would change, sending only GETs", planCommand},
	{"status", "show providers, schedules, running syncs, links and errors", statusCommand},
	{"history", "show one user's or group's past syncs from Temporal, newest first", historyCommand},
	{"outbox", "list, retry or drop the changes Temporal refused (outbox list|retry|drop)", outboxCommand},
	{"mapping", "test a provider's property mappings on one object (mapping test)", mappingCommand},
	{"providers", "list providers", providersCommand},
	{"mappings", "list property mappings", mappingsCommand},
	{"completion", "print the shell completion script (completion bash|zsh|fish)", completionCommand},
}

// run runs the command with args, as `starter NAME args...` does.
func (c command) run(ctx context.Context, d *Deps, args []string, stdout, stderr io.Writer) int {
	return Main(ctx, d, append([]string{c.name}, args...), stdout, stderr)
}

const mainUsage = `usage: starter [global flags] COMMAND [flags] [args]

starter is scimsync's operator CLI. It works on the scimsync database and, for syncs and
status, the Temporal namespace the workers use. Run "starter COMMAND --help" for a command.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error; plan: 3 when the next full
sync would change something.
`

// Main runs the command line args (without the program name) and returns the exit code.
// Global flags may come before the command or among its flags, with one dash or two.
func Main(ctx context.Context, d *Deps, args []string, stdout, stderr io.Writer) int {
	if d == nil {
		d = &Deps{}
	}
	code := ExitOK
	cfg := d.config()
	root := &cobra.Command{
		Use: "starter", Args: cobra.ArbitraryArgs, SilenceErrors: true, SilenceUsage: true,
		// The global flags before the command are the root's: errors in them are reported so.
		TraverseChildren:  true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// Without a command, or with one that does not exist.
		Run: func(root *cobra.Command, args []string) { code = rootUsageError(root, args, stderr) },
	}
	root.SetFlagErrorFunc(cli.FlagError)
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		if pos := cmd.Flags().Args(); len(pos) > 0 {
			code = rootUsageError(cmd, pos, stderr) // starter frobnicate --help
			return
		}
		printMainUsage(cmd, stdout)
	})
	root.SetHelpCommand(&cobra.Command{
		Use: "help [COMMAND]", Short: "help about a command", Hidden: true, DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			if len(args) == 0 {
				printMainUsage(root, stdout)
				return
			}
			code = Main(ctx, d, []string{args[0], "--help"}, stdout, stderr)
		},
	})
	root.SetOut(stdout)
	root.SetErr(stderr)
	cfg.defineGlobals(root.PersistentFlags())
	sub := *d
	sub.globals = &cfg
	lines := make(map[*cobra.Command]*cmdLine, len(commands))
	for _, c := range commands {
		cl := &cmdLine{name: c.name, cmd: &cobra.Command{Use: c.name, Short: c.summary}}
		cl.flags = cl.cmd.Flags()
		run := c.declare(cl)
		cl.cmd.SetHelpFunc(func(*cobra.Command, []string) { cl.printUsage(stdout) })
		cl.cmd.Run = func(_ *cobra.Command, pos []string) {
			cl.cfg = cfg
			code = run(ctx, &sub, pos, stdout, stderr)
		}
		root.AddCommand(cl.cmd)
		lines[cl.cmd] = cl
	}
	root.InitDefaultHelpFlag() // before TraverseChildren reads --help as taking a value
	args = cli.GoFlagArgs(root, args)
	if helpFirst(root, args) {
		printMainUsage(root, stdout)
		return ExitOK
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return code
	}
	// A flag or the positional arguments are wrong; the flags before a wrong one are parsed,
	// and --help among them wins, as it stopped the flag package.
	if help, _ := cmd.Flags().GetBool("help"); help {
		cmd.HelpFunc()(cmd, nil)
		return code
	}
	if cl := lines[cmd]; cl != nil {
		return cl.usageError(stderr, err.Error())
	}
	fmt.Fprintf(stderr, "starter: %v\n\n", cli.FlagError(root, err))
	printMainUsage(root, stderr)
	return ExitUsage
}

// helpFirst reports whether args ask for help before they name a command, after global
// flags only: "starter --help status" is the main usage, as "starter --help" is.
func helpFirst(root *cobra.Command, args []string) bool {
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if args[i] == "--" || !strings.HasPrefix(args[i], "-") {
			return false
		}
		if name == "help" || name == "h" {
			return true
		}
		f := root.PersistentFlags().Lookup(name)
		if f == nil {
			return false // cobra says what is wrong with it
		}
		if f.NoOptDefVal == "" && !hasValue {
			i++
		}
	}
	return false
}

// rootUsageError is starter without a command, or with one that does not exist.
func rootUsageError(root *cobra.Command, args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "starter: unknown command %q\n\n", args[0])
	}
	printMainUsage(root, stderr)
	return ExitUsage
}

func printMainUsage(root *cobra.Command, w io.Writer) {
	fmt.Fprint(w, mainUsage)
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	printFlags(w, root.PersistentFlags())
}

// cmdLine is one command's command line, which cobra parses: its own flags and the global
// ones, whose values are cfg.
type cmdLine struct {
	name  string
	usage string // the synopsis after "starter "
	help  string // what the command does
	cmd   *cobra.Command
	flags *pflag.FlagSet // the command's own flags
	cfg   Config
}

// describe declares the command's synopsis, its help and how many positional arguments it
// takes: at least minArgs, at most maxArgs (-1: any).
func (cl *cmdLine) describe(usage, help string, minArgs, maxArgs int) {
	cl.usage, cl.help = usage, help
	cl.cmd.ValidArgsFunction = cobra.NoFileCompletions
	cl.cmd.Args = func(_ *cobra.Command, pos []string) error {
		if len(pos) < minArgs {
			return errors.New("missing arguments")
		}
		if maxArgs >= 0 && len(pos) > maxArgs {
			return errors.New("unexpected arguments: " + strings.Join(pos[maxArgs:], " "))
		}
		return nil
	}
}

// kindNames are the object kinds a command line names.
var kindNames = []string{object.User, object.Group}

// completeArgs makes shell completion offer words[i] for the i-th positional argument, and
// nothing (no file names) for the others.
func (cl *cmdLine) completeArgs(words ...[]string) {
	cl.cmd.ValidArgsFunction = func(_ *cobra.Command, pos []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(pos) < len(words) {
			return words[len(pos)], cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func (cl *cmdLine) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: starter %s\n\n%s\n", cl.usage, strings.TrimSpace(cl.help))
	// Flags() holds the global flags too once cobra parsed the command line.
	own := cl.cmd.LocalFlags()
	var hasOwn bool
	own.VisitAll(func(f *pflag.Flag) { hasOwn = hasOwn || f.Name != "help" })
	if hasOwn {
		fmt.Fprintln(w, "\nflags:")
		printFlags(w, own)
	}
	fmt.Fprintln(w, "\nGlobal flags (see starter --help) are accepted too.")
}

func (cl *cmdLine) usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "starter %s: %s\n\n", cl.name, msg)
	cl.printUsage(stderr)
	return ExitUsage
}

// printFlags prints the flags of fs (but --help, which every command has), like
// flag.PrintDefaults but with double dashes, and with no default of a secret.
func printFlags(w io.Writer, fs *pflag.FlagSet) {
	var lines []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		arg, usage := pflag.UnquoteUsage(f)
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

// openStore opens the store for a command. When code >= 0 the command must return it;
// otherwise the command closes sess.
func (cl *cmdLine) openStore(ctx context.Context, d *Deps, stderr io.Writer) (sess *session, st *store.Store, code int) {
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
func (cl *cmdLine) providerFlag(name *string, usage string) {
	cl.flags.StringVar(name, "provider", "", usage+" (may be left out when there is exactly one provider)")
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
