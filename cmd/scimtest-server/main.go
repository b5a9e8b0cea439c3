// Command scimtest-server runs the in-memory SCIM 2.0 server of package scimtest as a
// stand-in application, for the demo and for trying providers out. Its state lives in
// memory and is gone when it stops.
//
//	scimtest-server -addr 127.0.0.1:8088 -token env:SCIMSYNC_DEMO_TOKEN -profile aws
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/secretref"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8088", "address to listen on")
	token := flag.String("token", "", "bearer token required on every request: literal or env:NAME / file:PATH (empty: no auth)")
	profile := flag.String("profile", "default", "vendor quirk profile: default, aws, slack, salesforce, webex")
	latency := flag.Duration("latency", 0, "latency added to every request")
	noBulk := flag.Bool("no-bulk", false, "advertise and enforce no Bulk support")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: scimtest-server [flags]\n\nServes an in-memory SCIM 2.0 target at http://ADDR/scim/v2.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	tok := ""
	if *token != "" {
		var err error
		if tok, err = secretref.Resolve(*token); err != nil {
			fmt.Fprintln(os.Stderr, "scimtest-server: token:", err)
			os.Exit(2)
		}
	}
	valid := false
	for _, p := range scimtest.ProfileNames() {
		valid = valid || p == *profile
	}
	if !valid {
		fmt.Fprintf(os.Stderr, "scimtest-server: unknown profile %q (use one of %v)\n", *profile, scimtest.ProfileNames())
		os.Exit(2)
	}
	srv := func() (s *scimtest.Server) {
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "scimtest-server:", r)
				os.Exit(1)
			}
		}()
		return scimtest.NewUnstartedServer(scimtest.Options{
			Addr: *addr, Token: tok, Quirks: scimtest.Profile(*profile),
			Config: scimtest.Config{NoBulk: *noBulk}, MaxLogEntries: -1,
		})
	}()
	if *latency > 0 {
		srv.AddFault(scimtest.Fault{Latency: *latency})
	}
	srv.Start()
	fmt.Printf("scimtest-server: serving SCIM 2.0 at %s (profile %s)\n", srv.URL, *profile)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	users, groups := srv.Len()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	fmt.Printf("scimtest-server: stopped with %d users and %d groups\n", users, groups)
}
