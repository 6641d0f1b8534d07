// Package nomad is core's view of the Nomad cluster its gpu-nodes run on,
// through the official client (github.com/hashicorp/nomad/api): the status,
// eligibility, drain state and allocations of the Nomad node behind each
// gpu-node, and draining one. A gpu-node's id is its Nomad node's name (the
// job spec sets it to ${node.unique.name}).
package nomad

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Node is a Nomad client node as the fleet view shows it.
type Node struct {
	ID, Name    string
	Status      string // "ready", "down", "initializing"
	Eligibility string // "eligible", "ineligible"
	Drain       bool
	Allocations []Allocation
}

// Allocation is one allocation placed on a node.
type Allocation struct {
	ID, JobID, TaskGroup string
	ClientStatus         string // "running", "pending", "complete", "failed", "lost"
	DesiredStatus        string
}

// Fleet talks to Nomad's HTTP API.
type Fleet struct{ c *api.Client }

// New returns a Fleet for the Nomad agent at addr (http://host:4646) with an
// ACL token (empty: none).
func New(addr, token string) (*Fleet, error) {
	cfg := api.DefaultConfig()
	cfg.Address, cfg.SecretID = addr, token
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return &Fleet{c: c}, nil
}

// Nodes returns the Nomad nodes with the given names, with their
// allocations; names Nomad does not know are left out.
func (f *Fleet) Nodes(ctx context.Context, names []string) (map[string]Node, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	stubs, _, err := f.c.Nodes().List(q)
	if err != nil {
		return nil, fmt.Errorf("nomad: list nodes: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]Node{}
	for _, s := range stubs {
		if !want[s.Name] {
			continue
		}
		n := Node{ID: s.ID, Name: s.Name, Status: s.Status, Eligibility: s.SchedulingEligibility, Drain: s.Drain}
		allocs, _, err := f.c.Nodes().Allocations(s.ID, q)
		if err != nil {
			return nil, fmt.Errorf("nomad: allocations of %s: %w", s.Name, err)
		}
		for _, a := range allocs {
			n.Allocations = append(n.Allocations, Allocation{ID: a.ID, JobID: a.JobID, TaskGroup: a.TaskGroup,
				ClientStatus: a.ClientStatus, DesiredStatus: a.DesiredStatus})
		}
		out[s.Name] = n
	}
	return out, nil
}

// Drain starts draining the Nomad node named name: Nomad marks it
// ineligible at once and stops its allocations by the deadline. A deadline
// of 0 ends a drain and makes the node eligible again.
func (f *Fleet) Drain(ctx context.Context, name string, deadline time.Duration) (Node, error) {
	nodes, err := f.Nodes(ctx, []string{name})
	if err != nil {
		return Node{}, err
	}
	n, ok := nodes[name]
	if !ok {
		return Node{}, job.Errorf(job.CodeNotFound, "Nomad knows no node named %q", name)
	}
	opts := &api.DrainOptions{MarkEligible: true, Meta: map[string]string{"message": "drain ended from ytcaption's admin API"}}
	if deadline > 0 {
		opts = &api.DrainOptions{DrainSpec: &api.DrainSpec{Deadline: deadline},
			Meta: map[string]string{"message": "drained from ytcaption's admin API"}}
	}
	if _, err := f.c.Nodes().UpdateDrainOpts(n.ID, opts, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return Node{}, fmt.Errorf("nomad: drain %s: %w", name, err)
	}
	n.Drain, n.Eligibility = deadline > 0, map[bool]string{true: "ineligible", false: "eligible"}[deadline > 0]
	return n, nil
}
