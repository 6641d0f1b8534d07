package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

const adminUsage = `ytcaption-core admin works on the database directly, for the operator of a deployment.

Usage:
  ytcaption-core admin create-user --name NAME [--role user|admin] [--plan PLAN]
  ytcaption-core admin create-key  --user NAME     print a new API key (shown once; only its hash is kept)
  ytcaption-core admin set-plan    --name PLAN [--create-rate N] [--create-burst N] [--read-rate N] [--read-burst N]
                                   [--monthly-minutes N] [--max-concurrent N] [--max-streams N] [--monthly-translation-chars N]
                                   create or change a plan; rates 0 or unset: the deployment's default (core's flags);
                                   quotas 0 or unset: unlimited; --max-streams 0 or unset: the edge's --max-streams
  ytcaption-core admin assign-plan --user NAME --plan PLAN
  ytcaption-core admin delete-user --name NAME    delete the user, their keys and every job of theirs with its
                                   transcript; their audio is deleted by core's next retention sweep (audited)

Every command takes --postgres-url (or YTCAPTION_CORE_POSTGRES_URL) and applies pending migrations first.
A changed plan reaches the edges as their API-key caches expire (10 s by default); quotas apply at once.
Everything else — keys, quotas per user, webhooks, usage, jobs — is in the admin API (/v1/admin/, admins' keys)
and the dashboard (core's /admin/).`

func admin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: admin needs a command; run \"ytcaption-core admin help\" for them", errUsage)
	}
	fs := flag.NewFlagSet("admin "+args[0], flag.ContinueOnError)
	// Only the database comes from the environment: serve's variables
	// (YTCAPTION_CORE_CREATE_RATE...) must not leak into a plan.
	dbURL := getenv("YTCAPTION_CORE_POSTGRES_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable"
	}
	url := fs.String("postgres-url", dbURL, "PostgreSQL connection URL (default: $YTCAPTION_CORE_POSTGRES_URL or the local database)")
	var do func(*store.Store) error
	switch args[0] {
	case "create-user":
		name := fs.String("name", "", "the user's name (required, unique)")
		role := fs.String("role", string(store.RoleUser), "user or admin")
		plan := fs.String("plan", store.DefaultPlan, "the user's plan")
		do = func(s *store.Store) error {
			u, err := s.CreateUser(ctx, *name, store.Role(*role), *plan)
			if err == nil {
				fmt.Fprintf(stdout, "created user %s (%s, %s, plan %s)\n", u.Name, u.ID, u.Role, u.Plan.Name)
			}
			return err
		}
	case "create-key":
		user := fs.String("user", "", "the user's name (required)")
		do = func(s *store.Store) error {
			id, err := s.UserID(ctx, *user)
			if err != nil {
				return err
			}
			key, err := s.CreateAPIKey(ctx, id)
			if err == nil {
				fmt.Fprintln(stdout, key)
			}
			return err
		}
	case "set-plan":
		var p store.Plan
		fs.StringVar(&p.Name, "name", "", "the plan's name (required): lower-case letters, digits, - and _")
		fs.IntVar(&p.CreateRate, "create-rate", 0, "job creations per second per API key")
		fs.IntVar(&p.CreateBurst, "create-burst", 0, "job creations per API key allowed at once")
		fs.IntVar(&p.ReadRate, "read-rate", 0, "other API calls per second per API key")
		fs.IntVar(&p.ReadBurst, "read-burst", 0, "other API calls per API key allowed at once")
		fs.IntVar(&p.MonthlyMinutes, "monthly-minutes", 0, "audio minutes of succeeded jobs per user per UTC month (0: unlimited)")
		fs.IntVar(&p.MaxConcurrent, "max-concurrent", 0, "jobs a user may have running at once (0: unlimited)")
		fs.IntVar(&p.MaxStreams, "max-streams", 0, "event streams one API key may hold open at once on one edge (0: the edge's --max-streams)")
		fs.IntVar(&p.MonthlyTranslationChars, "monthly-translation-chars", 0, "characters of transcripts a user may have translated per UTC month (0: unlimited)")
		do = func(s *store.Store) error {
			if err := s.SetPlan(ctx, p); err != nil {
				return err
			}
			got, err := s.GetPlan(ctx, p.Name)
			if err == nil {
				fmt.Fprintf(stdout, "plan %s: create %s/s burst %s, read %s/s burst %s, %s minutes a month, %s jobs at once, %s streams per key, %s translation characters a month\n", got.Name,
					orDefault(got.CreateRate), orDefault(got.CreateBurst), orDefault(got.ReadRate), orDefault(got.ReadBurst),
					orUnlimited(got.MonthlyMinutes), orUnlimited(got.MaxConcurrent), orDefault(got.MaxStreams), orUnlimited(got.MonthlyTranslationChars))
			}
			return err
		}
	case "assign-plan":
		user := fs.String("user", "", "the user's name (required)")
		plan := fs.String("plan", "", "the plan (required)")
		do = func(s *store.Store) error {
			err := s.AssignPlan(ctx, *user, *plan)
			if err == nil {
				fmt.Fprintf(stdout, "user %s is on plan %s\n", *user, *plan)
			}
			return err
		}
	case "delete-user":
		name := fs.String("name", "", "the user's name (required)")
		do = func(s *store.Store) error {
			actor := "cli:" + getenv("USER")
			n, err := s.DeleteUser(ctx, actor, *name)
			if err == nil {
				fmt.Fprintf(stdout, "deleted user %s and %d job(s); their audio goes at core's next retention sweep\n", *name, n)
			}
			return err
		}
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, adminUsage)
		return nil
	default:
		hint := `run "ytcaption-core admin help" for the commands`
		if near := envflag.Nearest(args[0], []string{"create-user", "create-key", "set-plan", "assign-plan", "delete-user"}); near != "" {
			hint = fmt.Sprintf("did you mean %q? (%s)", near, hint)
		}
		return fmt.Errorf("%w: unknown admin command %q; %s", errUsage, args[0], hint)
	}
	// Only --postgres-url comes from the environment (above), so the flags
	// are parsed without envflag's twins.
	if err := envflag.ParseCommand(fs, "", adminUsage, args[1:], func(string) string { return "" }, stdout); err != nil {
		return err
	}
	for _, f := range []string{"name", "user", "plan"} {
		if fl := fs.Lookup(f); fl != nil && fl.Value.String() == "" {
			return fmt.Errorf("%w: --%s is required", errUsage, f)
		}
	}
	pool, err := core.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Migrate(ctx, sqldb.FromPool(pool)); err != nil {
		return err
	}
	return do(store.New(sqldb.FromPool(pool)))
}

func orUnlimited(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func orDefault(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}
