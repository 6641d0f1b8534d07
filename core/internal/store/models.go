package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// OfferedModel is one model an engine of the fleet runs, as the gpu-nodes
// seen lately advertise it.
type OfferedModel struct {
	engines.Caps           // the engine; Models is nil
	Model        string    // "" for an engine that names no model
	FirstSeen    time.Time // the earliest first call-in of a node offering it
}

// OfferedModels lists every engine and model the gpu-nodes seen within
// window advertise, once each, sorted by engine then model. An engine on
// several nodes that advertise it differently is listed with what any of
// them can do.
func (s *Store) OfferedModels(ctx context.Context, window time.Duration) ([]OfferedModel, error) {
	rows, err := s.db.Query(ctx, `SELECT capabilities, first_seen FROM agents
		WHERE last_seen > now() - $1::bigint * interval '1 millisecond'`, window.Milliseconds())
	type node struct {
		caps  []engines.Caps
		first time.Time
	}
	nodes, err := sqldb.Collect(rows, err, func(r sqldb.Row) (node, error) {
		var b []byte
		var n node
		if err := r.Scan(&b, &n.first); err != nil {
			return n, err
		}
		return n, json.Unmarshal(b, &n.caps)
	})
	if err != nil {
		return nil, fmt.Errorf("list offered models: %w", err)
	}
	type key struct{ engine, model string }
	byKey := map[key]*OfferedModel{}
	add := func(c engines.Caps, model string, first time.Time) {
		k := key{c.Name, model}
		m, ok := byKey[k]
		if !ok {
			m = &OfferedModel{Caps: engines.Caps{Name: c.Name}, Model: model, FirstSeen: first}
			byKey[k] = m
		}
		if first.Before(m.FirstSeen) {
			m.FirstSeen = first
		}
		m.Translate = m.Translate || c.Translate
		m.Prompt = m.Prompt || c.Prompt
		m.Speakers = m.Speakers || c.Speakers
		switch {
		case !ok:
			m.Languages = slices.Clone(c.Languages)
		case len(m.Languages) > 0 && len(c.Languages) > 0:
			m.Languages = append(m.Languages, c.Languages...)
			slices.Sort(m.Languages)
			m.Languages = slices.Compact(m.Languages)
		default:
			m.Languages = nil // one of them recognises any language
		}
	}
	for _, n := range nodes {
		for _, c := range n.caps {
			if len(c.Models) == 0 {
				add(c, "", n.first)
			}
			for _, model := range c.Models {
				add(c, model, n.first)
			}
		}
	}
	out := make([]OfferedModel, 0, len(byKey))
	for _, m := range byKey {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b OfferedModel) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Model, b.Model))
	})
	return out, nil
}

// RecordGuards keeps what the gpu-node's hallucination guards removed from
// the transcript of the job epoch holds; CompleteJob calls it before
// Complete. A stale epoch changes nothing (Complete then refuses it).
func (s *Store) RecordGuards(ctx context.Context, id string, epoch int64, c job.GuardCounts) error {
	if _, err := uuid.Parse(id); err != nil {
		return leaseLost(id, epoch)
	}
	if _, err := s.db.Exec(ctx, `UPDATE jobs SET silence_dropped = $3, repetition_dropped = $4, repetition_trimmed = $5
		WHERE id = $1 AND epoch = $2 AND status = 'transcribing'`,
		id, epoch, c.SilenceDropped, c.RepetitionDropped, c.RepetitionTrimmed); err != nil {
		return fmt.Errorf("record the guards of job %s: %w", id, err)
	}
	return nil
}
