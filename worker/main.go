package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Main is the worker command: it reads the configuration from args (the command line
// without the program name) and the environment, runs the worker until SIGINT or SIGTERM,
// and returns the exit code: 0 after -h or a clean stop, 2 when the configuration is wrong
// (printed after name), 1 when the worker fails. Configured, when not nil, runs once the
// configuration is valid, before the worker starts: commands add their extras there.
func Main(name string, args []string, configured func()) int {
	cfg, err := ParseConfig(args, nil)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 2
	}
	if configured != nil {
		configured()
	}
	// Installed only now, so that a signal during parsing still ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := NewLogger(cfg, os.Stderr)
	if err := Run(ctx, cfg, logger, nil); err != nil {
		logger.Error("worker failed", "error", err)
		return 1
	}
	return 0
}
