package api

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/engines"
)

// agentWriteEvery is how often at most a replica writes a gpu-node's
// registry row (agents: what it advertises, when it was last seen) while
// nothing in it changes. Every AcquireJob and Heartbeat used to write it — a
// committed write per job and per beat for a figure the fleet view shows to
// the second and creation reads with a 10-minute window (offerWindow).
const agentWriteEvery = 10 * time.Second

// maxBookedNodes bounds the memory of nodes a replica keeps (a node token
// could name a new node id on every call); past it, entries older than
// agentWriteEvery are dropped, and a node dropped is written at its next call.
const maxBookedNodes = 4096

// nodeBook is this replica's memory of what it last wrote to each gpu-node's
// registry row, so that a poll or a heartbeat writes it only when it is due:
// the first call, a change of what the node advertises (capabilities or
// version), agentWriteEvery after the last write, or while the node is
// drained. A drained node's every poll reads its row, so an undone drain
// takes effect at its next poll; a node drained meanwhile gets no job
// anyway, since the claim itself refuses a drained node.
type nodeBook struct {
	now   func() time.Time
	mu    sync.Mutex
	nodes map[string]booked
}

type booked struct {
	at       time.Time
	ad       string // capabilities and version, as last written
	draining bool
}

func newNodeBook(now func() time.Time) *nodeBook {
	return &nodeBook{now: now, nodes: map[string]booked{}}
}

// advert is what a node advertises, compared between polls.
func advert(caps []engines.Caps, version string) string {
	b, _ := json.Marshal(caps) // plain structs: never fails
	return version + "\x00" + string(b)
}

// touchDue reports whether a poll of node advertising ad must write the
// registry row.
func (b *nodeBook) touchDue(node, ad string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.nodes[node]
	return !ok || e.draining || e.ad != ad || b.now().Sub(e.at) >= agentWriteEvery
}

// touched records a write of node's row: what it advertised and whether it
// is drained.
func (b *nodeBook) touched(node, ad string, draining bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.nodes) >= maxBookedNodes {
		for n, e := range b.nodes {
			if now.Sub(e.at) >= agentWriteEvery {
				delete(b.nodes, n)
			}
		}
	}
	b.nodes[node] = booked{at: now, ad: ad, draining: draining}
}

// seenDue reports whether a heartbeat of node must refresh its last-seen
// time, and if so counts it as done: a node this replica has not written
// lately. A node it never booked (its polls go to another replica) is
// written at most every agentWriteEvery as well.
func (b *nodeBook) seenDue(node string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	e, ok := b.nodes[node]
	if ok && now.Sub(e.at) < agentWriteEvery {
		return false
	}
	if !ok && len(b.nodes) >= maxBookedNodes {
		return true // no room to remember it: write, as before
	}
	e.at = now
	b.nodes[node] = e
	return true
}
