// Command pprofworker is cmd/worker with profiling endpoints, for `go run ./bench --pprof
// DIR`. It runs exactly the same worker.Run and, when SCIMSYNC_BENCH_PPROF_ADDR is set,
// also serves on that address:
//
//	/debug/pprof/...                  the net/http/pprof handlers
//	POST /bench/cpu/start?file=PATH   start a CPU profile written to PATH
//	POST /bench/cpu/stop              stop it
//	POST /bench/heap?file=PATH        write a heap profile (after a GC) to PATH
//
// It is not meant for production: the endpoints write files wherever they are told.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
	"syscall"

	"github.com/scimsync/scimsync/worker"
)

func main() {
	cfg, err := worker.ParseConfig(os.Args[1:], nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofworker:", err)
		os.Exit(2)
	}
	if addr := os.Getenv("SCIMSYNC_BENCH_PPROF_ADDR"); addr != "" {
		go func() {
			if err := http.ListenAndServe(addr, profiler()); err != nil {
				fmt.Fprintln(os.Stderr, "pprofworker:", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := worker.NewLogger(cfg, os.Stderr)
	if err := worker.Run(ctx, cfg, logger, nil); err != nil {
		logger.Error("worker failed", "error", err)
		os.Exit(1)
	}
}

func profiler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	var mu sync.Mutex
	var cpu *os.File
	mux.HandleFunc("POST /bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpu != nil {
			http.Error(w, "a CPU profile is running", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cpu = f
	})
	mux.HandleFunc("POST /bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpu == nil {
			return
		}
		rpprof.StopCPUProfile()
		cpu.Close()
		cpu = nil
	})
	mux.HandleFunc("POST /bench/heap", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer f.Close()
		runtime.GC()
		if err := rpprof.Lookup("heap").WriteTo(f, 0); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}
