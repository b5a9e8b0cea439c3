package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/workflows"
)

// syncBuffer is a log sink the test reads while the worker code writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestWorkerWaitsForItsNamespace: a worker that reaches a server before the server's
// namespace exists (a cluster starting beside it) waits for the namespace, then registers
// its search attributes there; a namespace that never comes is named in the error.
func TestWorkerWaitsForItsNamespace(t *testing.T) {
	srv := testenv.Temporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := fmt.Sprintf("late-%d", time.Now().UnixNano())
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendHostPort(), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{TemporalAddress: srv.FrontendHostPort(), TemporalNamespace: ns}

	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- ensureSearchAttributesWaiting(ctx, c, cfg, slog.New(slog.NewTextHandler(&logs, nil)), 2*time.Minute)
	}()
	for !strings.Contains(logs.String(), "Namespace "+ns+" is not found") {
		select {
		case err := <-done:
			t.Fatalf("returned %v before the namespace existed; logs:\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("no wait logged; logs:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the namespace was made: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("still waiting after the namespace was made; logs:\n%s", logs.String())
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for name := range workflows.SearchAttributes {
		if _, ok := resp.GetCustomAttributes()[name]; !ok {
			t.Errorf("search attribute %s not registered in %s: %v", name, ns, resp.GetCustomAttributes())
		}
	}

	missing := Config{TemporalAddress: srv.FrontendHostPort(), TemporalNamespace: ns + "-never"}
	err = ensureSearchAttributesWaiting(ctx, c, missing, slog.New(slog.NewTextHandler(&logs, nil)), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "namespace "+missing.TemporalNamespace+" does not exist at Temporal") ||
		!strings.Contains(err.Error(), "temporal operator namespace create "+missing.TemporalNamespace) {
		t.Fatalf("a namespace that never comes: %v", err)
	}
}
