package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// DefaultPlan is every new user's plan.
const DefaultPlan = "default"

// Plan is how much a user may do. A zero rate limit takes the deployment's
// default; a zero quota is no limit.
// Its JSON names are the admin API's, as the audit log records a plan.
type Plan struct {
	Name        string `json:"name"`
	CreateRate  int    `json:"create_rate"`  // job creations per second per API key
	CreateBurst int    `json:"create_burst"` // and at once
	ReadRate    int    `json:"read_rate"`    // other calls
	ReadBurst   int    `json:"read_burst"`
	// Audio minutes of succeeded jobs per UTC month.
	MonthlyMinutes int `json:"monthly_minutes"`
	MaxConcurrent  int `json:"max_concurrent"` // jobs running at once
	// MaxStreams is how many event streams one API key may hold open at once
	// on one edge; 0: the edge's default.
	MaxStreams int `json:"max_streams"`
	// MonthlyTranslationChars are the characters of transcripts a user may
	// have translated per UTC month (docs/translation.md).
	MonthlyTranslationChars int `json:"monthly_translation_chars"`
}

// SetPlan creates or updates a plan.
func (s *Store) SetPlan(ctx context.Context, p Plan) error {
	for _, v := range []int{p.CreateRate, p.CreateBurst, p.ReadRate, p.ReadBurst} {
		if v < 0 {
			return job.Errorf(job.CodeInvalidArgument, "plan %s: limits must be positive (0: the deployment's default)", p.Name)
		}
	}
	if p.MaxStreams < 0 {
		return job.Errorf(job.CodeInvalidArgument, "plan %s: max streams must be positive (0: the edge's default)", p.Name)
	}
	if p.MonthlyMinutes < 0 || p.MaxConcurrent < 0 || p.MonthlyTranslationChars < 0 {
		return job.Errorf(job.CodeInvalidArgument, "plan %s: quotas are positive (0: unlimited)", p.Name)
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO plans (name, create_rate, create_burst, read_rate, read_burst, monthly_minutes, max_concurrent, max_streams, monthly_translation_chars)
		VALUES ($1, NULLIF($2, 0), NULLIF($3, 0), NULLIF($4, 0), NULLIF($5, 0), NULLIF($6, 0), NULLIF($7, 0), NULLIF($8, 0), NULLIF($9, 0))
		ON CONFLICT (name) DO UPDATE SET create_rate = EXCLUDED.create_rate, create_burst = EXCLUDED.create_burst,
			read_rate = EXCLUDED.read_rate, read_burst = EXCLUDED.read_burst,
			monthly_minutes = EXCLUDED.monthly_minutes, max_concurrent = EXCLUDED.max_concurrent,
			max_streams = EXCLUDED.max_streams, monthly_translation_chars = EXCLUDED.monthly_translation_chars, updated_at = now()`,
		p.Name, p.CreateRate, p.CreateBurst, p.ReadRate, p.ReadBurst, p.MonthlyMinutes, p.MaxConcurrent, p.MaxStreams, p.MonthlyTranslationChars)
	if sqldb.IsCheckViolation(err) { // the name
		return job.Errorf(job.CodeInvalidArgument, "plan name %q: use lower-case letters, digits, - and _", p.Name)
	}
	if err != nil {
		return fmt.Errorf("set plan %s: %w", p.Name, err)
	}
	return nil
}

// CreateUser adds a user on plan; a taken name is a conflict.
func (s *Store) CreateUser(ctx context.Context, name string, role Role, plan string) (User, error) {
	if role != RoleAdmin && role != RoleUser {
		return User{}, job.Errorf(job.CodeInvalidArgument, "role must be admin or user, got %q", role)
	}
	if name == "" {
		return User{}, job.Errorf(job.CodeInvalidArgument, "a user needs a name")
	}
	if _, err := s.GetPlan(ctx, plan); err != nil {
		return User{}, err
	}
	u := User{Name: name, Role: role}
	err := s.db.QueryRow(ctx, `
		INSERT INTO users (name, role, plan) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING
		RETURNING id, created_at`, name, string(role), plan).Scan(&u.ID, &u.CreatedAt)
	if errors.Is(err, sqldb.ErrNoRows) {
		return User{}, job.Errorf(job.CodeConflict, "a user named %q exists already", name)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	u.Plan, err = s.GetPlan(ctx, plan)
	return u, err
}

// UserID returns the id of the user named name.
func (s *Store) UserID(ctx context.Context, name string) (string, error) {
	var id string
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", job.Errorf(job.CodeNotFound, "no user %q", name)
	}
	if err != nil {
		return "", fmt.Errorf("find user %s: %w", name, err)
	}
	return id, nil
}

// AssignPlan puts the user named user on plan.
func (s *Store) AssignPlan(ctx context.Context, user, plan string) error {
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM plans WHERE name = $1)`, plan).Scan(&exists); err != nil {
		return fmt.Errorf("assign plan: %w", err)
	}
	if !exists {
		return job.Errorf(job.CodeNotFound, "no plan %q", plan)
	}
	tag, err := s.db.Exec(ctx, `UPDATE users SET plan = $2 WHERE name = $1`, user, plan)
	if err != nil {
		return fmt.Errorf("assign plan: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return job.Errorf(job.CodeNotFound, "no user %q", user)
	}
	return nil
}

// planColumns read a plan joined as p, NULL limits as 0.
const planColumns = `p.name, COALESCE(p.create_rate, 0), COALESCE(p.create_burst, 0), COALESCE(p.read_rate, 0), COALESCE(p.read_burst, 0),
	COALESCE(p.monthly_minutes, 0), COALESCE(p.max_concurrent, 0), COALESCE(p.max_streams, 0), COALESCE(p.monthly_translation_chars, 0)`

func planDest(p *Plan) []any {
	return []any{&p.Name, &p.CreateRate, &p.CreateBurst, &p.ReadRate, &p.ReadBurst, &p.MonthlyMinutes, &p.MaxConcurrent, &p.MaxStreams, &p.MonthlyTranslationChars}
}

// GetPlan returns the plan named name.
func (s *Store) GetPlan(ctx context.Context, name string) (Plan, error) {
	var p Plan
	err := s.db.QueryRow(ctx, `SELECT `+planColumns+` FROM plans p WHERE p.name = $1`, name).Scan(planDest(&p)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Plan{}, job.Errorf(job.CodeNotFound, "no plan %q", name)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("get plan %s: %w", name, err)
	}
	return p, nil
}
