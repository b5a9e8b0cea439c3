package changefeed

import (
	"context"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// listen keeps a LISTEN connection on channel at dsn until ctx ends, reconnecting with
// backoff (100 ms to 10 s) when it drops. The returned channel (buffered, one slot) receives
// a wake-up on every notification, and once after each successful (re)connection because
// notifications raised while disconnected are lost. Logs never include the DSN.
func listen(ctx context.Context, dsn, channel string, log *slog.Logger) <-chan struct{} {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is already pending; one read serves both
		}
	}
	l := pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnectionAttemptFailed:
			log.Warn("changefeed: LISTEN connection attempt failed; polling meanwhile", "channel", channel, "error", err)
		case pq.ListenerEventDisconnected:
			log.Warn("changefeed: LISTEN connection lost; reconnecting", "channel", channel, "error", err)
		case pq.ListenerEventReconnected:
			log.Info("changefeed: LISTEN connection restored", "channel", channel)
		}
	})
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		// Listen blocks until the first connection is up (or the listener is closed); the
		// listener re-issues LISTEN by itself after a reconnection.
		if err := l.Listen(channel); err != nil {
			if ctx.Err() == nil {
				log.Error("changefeed: LISTEN failed; polling only", "channel", channel, "error", err)
			}
			for range l.Notify { // keep the listener's goroutine unblocked until Close
			}
			return
		}
		log.Debug("changefeed: listening", "channel", channel)
		poke()
		for range l.Notify { // nil after a reconnection: also a reason to look
			poke()
		}
	}()
	return wake
}
