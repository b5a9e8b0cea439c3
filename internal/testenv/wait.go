package testenv

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually calls cond every tick until it holds, and fails the test with cond's message
// once timeout has passed. The services change state asynchronously (schedules, the relay,
// visibility), so tests wait for a state instead of reading it once.
func Eventually(tb testing.TB, timeout, tick time.Duration, cond func() (ok bool, msg string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(tick)
	}
}

// SyncBuffer is a bytes.Buffer that goroutines may share: services write their logs into
// it from their own goroutines while the test reads them.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
