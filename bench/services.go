package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// process is a child process the bench started: the Temporal dev server or a worker. It
// dies with the bench (Pdeathsig), so an interrupted run leaves nothing behind.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the process to end (SIGTERM) and kills it after grace.
func (p *process) stop(grace time.Duration) {
	if ok, _ := p.exited(); !ok {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// tail returns the last lines of the process's log, for error messages.
func (p *process) tail(n int) string {
	f, err := os.Open(p.log.Name())
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startDevServer starts `temporal server start-dev` (in memory, no UI) with scimsync's
// search attributes and returns it with a client.
func startDevServer(ctx context.Context, cli, dir string, dynamic []string, logw io.Writer) (*process, client.Client, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"server", "start-dev", "--headless", "--ip", host, "--port", port, "--log-level", "error"}
	for name, typ := range workflows.SearchAttributes {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	for _, kv := range dynamic {
		args = append(args, "--dynamic-config-value", kv)
	}
	p, err := startProcess("temporal dev server", filepath.Join(dir, "temporal.log"), os.Environ(), cli, args...)
	if err != nil {
		return nil, nil, "", err
	}
	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})))
	deadline := time.Now().Add(90 * time.Second)
	for {
		if ok, err := p.exited(); ok {
			p.stop(0)
			return nil, nil, "", fmt.Errorf("temporal dev server exited: %v\n%s", err, p.tail(20))
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.DialContext(dctx, client.Options{HostPort: addr, Namespace: "default", Logger: logger})
		cancel()
		if err == nil {
			return p, c, addr, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop(5 * time.Second)
			return nil, nil, "", fmt.Errorf("temporal dev server at %s did not answer: %w", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildWorker builds pkg (./cmd/worker, or ./bench/pprofworker for profiling) into dir.
func buildWorker(ctx context.Context, root, dir, pkg string) (string, error) {
	out := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// workerEnv is the environment of a worker process: the bench's own, minus settings of
// the worker that the bench decides, plus those.
func workerEnv(settings map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SCIMSYNC_") || strings.HasPrefix(k, "TEMPORAL_") || k == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}

// waitHealthy polls the worker's /healthz until it answers 200.
func waitHealthy(ctx context.Context, p *process, base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ok, err := p.exited(); ok {
			return fmt.Errorf("worker exited: %v\n%s", err, p.tail(30))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("worker not healthy at %s after 60s\n%s", base, p.tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createDatabase creates an empty database named name on the server of adminURL and
// returns its URL.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	admin, err := store.Open(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL at DATABASE_URL: %w", err)
	}
	defer admin.Close()
	if _, err := admin.DB().ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop stale database %s: %w", name, err)
	}
	if _, err := admin.DB().ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(adminURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, adminURL)
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.DB().ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
}

// scrapeMetrics reads a Prometheus text exposition and returns the sample values by
// metric name and the given label's value ("" when absent), summed over other labels.
func scrapeMetrics(ctx context.Context, url string) (metricSet, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// metricSet maps "name", and "name{label=value}" for the workflow_type, activity_type and
// operation labels, to values summed over the other labels.
type metricSet map[string]float64

func parseMetrics(r io.Reader) (metricSet, error) {
	out := metricSet{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		head := line[:sp]
		name, labels := head, ""
		if i := strings.IndexByte(head, '{'); i >= 0 {
			name, labels = head[:i], head[i+1:len(head)-1]
		}
		out[name] += v
		for _, key := range []string{"workflow_type", "activity_type", "operation"} {
			if val := labelValue(labels, key); val != "" {
				out[name+"{"+key+"="+val+"}"] += v
			}
		}
	}
	return out, sc.Err()
}

func labelValue(labels, key string) string {
	i := strings.Index(labels, key+`="`)
	if i < 0 || (i > 0 && labels[i-1] != ',') {
		return ""
	}
	rest := labels[i+len(key)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// sub returns m - before, for every key of m.
func (m metricSet) sub(before metricSet) metricSet {
	out := metricSet{}
	for k, v := range m {
		out[k] = v - before[k]
	}
	return out
}

// byLabel returns the values of metric name by the value of label, rounded, without
// zeros.
func (m metricSet) byLabel(name, label string) map[string]int {
	out := map[string]int{}
	prefix := name + "{" + label + "="
	for k, v := range m {
		if t, ok := strings.CutPrefix(k, prefix); ok && v >= 0.5 {
			out[strings.TrimSuffix(t, "}")] += int(v + 0.5)
		}
	}
	return out
}

var errNoMetric = errors.New("metric not exposed")

// first returns the value of the first of names that the set has.
func (m metricSet) first(names ...string) (float64, error) {
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", errNoMetric, strings.Join(names, ", "))
}
