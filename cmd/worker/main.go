// Command worker runs a scimsync worker: it syncs directory changes to every enabled SCIM
// provider as they happen and runs each provider's hourly full sync. Run as many as you
// like against the same database and Temporal namespace. See `worker -h`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/scimsync/scimsync/worker"
)

func main() {
	cfg, err := worker.ParseConfig(os.Args[1:], nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := worker.NewLogger(cfg, os.Stderr)
	if err := worker.Run(ctx, cfg, logger, nil); err != nil {
		logger.Error("worker failed", "error", err)
		os.Exit(1)
	}
}
