// Command starter is scimsync's operator CLI: apply configuration as code, import a
// directory, sync one object now, start full syncs and show their status. See
// `starter --help`; the commands live in package starter.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/scimsync/scimsync/starter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := starter.Main(ctx, &starter.Deps{}, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
