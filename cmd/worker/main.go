// Command worker runs a scimsync worker: it syncs directory changes to every enabled SCIM
// provider as they happen and runs each provider's hourly full sync. Run as many as you
// like against the same database and Temporal namespace. See `worker -h`.
package main

import (
	"os"

	"github.com/scimsync/scimsync/worker"
)

func main() {
	os.Exit(worker.Main("worker", os.Args[1:], nil))
}
