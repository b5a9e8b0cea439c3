package store

import (
	"context"
	"sync"
)

// LinkSaver saves links as SaveLink does, the way a group commit does: several writers
// save links at once (the requests of one write activity run several at a time), and each
// must have its link stored before its write counts as done. The first to call Save
// becomes the leader and stores every link waiting at that moment with one statement
// (SaveLinks); links that arrive meanwhile wait for the next statement, which the leader
// also writes. Every Save returns only once its own link is stored, or with the error of
// the statement that carried it, exactly as with a statement per link, at a fraction of
// the statements and round trips.
//
// A LinkSaver is safe for concurrent use. The links it is given must be of one provider
// and kind; the statements run with the context of the leader of the moment.
type LinkSaver struct {
	s *Store

	mu       sync.Mutex
	pending  []pendingLink
	flushing bool
}

type pendingLink struct {
	link Link
	done chan error
}

// NewLinkSaver returns a LinkSaver writing to s.
func (s *Store) NewLinkSaver() *LinkSaver { return &LinkSaver{s: s} }

// Save stores l and returns once it is stored.
func (ls *LinkSaver) Save(ctx context.Context, l Link) error {
	done := make(chan error, 1)
	ls.mu.Lock()
	ls.pending = append(ls.pending, pendingLink{link: l, done: done})
	if ls.flushing {
		ls.mu.Unlock()
		return <-done // the leader stores it, with the links that came with it
	}
	ls.flushing = true
	for len(ls.pending) > 0 {
		batch := ls.take()
		ls.mu.Unlock()
		links := make([]Link, len(batch))
		for i, p := range batch {
			links[i] = p.link
		}
		err := ls.s.SaveLinks(ctx, links)
		for _, p := range batch {
			p.done <- err
		}
		ls.mu.Lock()
	}
	ls.flushing = false
	ls.mu.Unlock()
	return <-done
}

// take removes the waiting links to store in one statement: each object at most once (a
// statement cannot write a row twice); a second link of an object waits for the next one.
// Call with ls.mu held.
func (ls *LinkSaver) take() []pendingLink {
	seen := make(map[string]bool, len(ls.pending))
	var batch, rest []pendingLink
	for _, p := range ls.pending {
		if seen[p.link.ObjectID] {
			rest = append(rest, p)
			continue
		}
		seen[p.link.ObjectID] = true
		batch = append(batch, p)
	}
	ls.pending = rest
	return batch
}
