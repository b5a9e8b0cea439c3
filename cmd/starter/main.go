// Command starter is scimsync's operator CLI: apply configuration as code, import a
// directory, sync one object now, start full syncs and show their status. See
// `starter --help`; the commands live in package starter.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/scimsync/scimsync/starter"
)

func main() {
	// The commands print what happens; library log lines below errors would repeat it.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := starter.Main(ctx, &starter.Deps{}, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
