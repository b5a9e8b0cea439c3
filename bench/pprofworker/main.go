// Command pprofworker is cmd/worker with profiling endpoints, for `go run ./bench --pprof
// DIR`. It runs exactly the same worker.Main and, when SCIMSYNC_BENCH_PPROF_ADDR is set,
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
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"sync"

	"github.com/scimsync/scimsync/worker"
)

func main() {
	os.Exit(worker.Main("pprofworker", os.Args[1:], serveProfiles))
}

// serveProfiles serves the profiling endpoints on SCIMSYNC_BENCH_PPROF_ADDR, if set.
func serveProfiles() {
	addr := os.Getenv("SCIMSYNC_BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, profiler()); err != nil {
			fmt.Fprintln(os.Stderr, "pprofworker:", err)
		}
	}()
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
