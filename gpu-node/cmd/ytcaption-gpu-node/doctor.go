package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

// coreFlags are how the node reaches core, shared by the agent and doctor.
func coreFlags(fs *flag.FlagSet, cfg *agent.Config) {
	fs.StringVar(&cfg.CoreURL, "core-url", "http://127.0.0.1:8020", "core's Connect URL")
	fs.StringVar(&cfg.NodeToken, "node-token", "", "token this node presents to core (required)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "name of this node (default: the host name)")
	fs.StringVar(&cfg.ConsulAddr, "consul-addr", "", "local Consul agent (host:port): find healthy core instances, --core-url serving while Consul knows none (empty: no Consul)")
}

const doctorSummary = `ytcaption-gpu-node doctor checks what the node needs, with the agent's own flags and
environment: the engine (its binary and model, or its server), the GPU (nvidia-smi, when the
NVIDIA driver is installed), and reaching core with the node token. It prints one line a check
and fails if any does.`

func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ytcaption-gpu-node doctor", flag.ContinueOnError)
	var cfg agent.Config
	coreFlags(fs, &cfg)
	engineFlags(fs, &cfg)
	if err := envflag.ParseCommand(fs, "YTCAPTION_GPU_NODE", doctorSummary, args, getenv, stdout); err != nil {
		return err
	}
	failed := 0
	report := func(check string, probe func() (string, error)) {
		found, err := probe()
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %-6s %v\n", check, err)
			return
		}
		fmt.Fprintf(stdout, "ok   %-6s %s\n", check, found)
	}

	report("engine", func() (string, error) { return engine.Check(ctx, cfg.EngineConfig()) })
	report("gpu", func() (string, error) { return gpus(ctx) })
	report("core", func() (string, error) {
		if cfg.NodeToken == "" {
			return "", errors.New("no node token (--node-token or YTCAPTION_GPU_NODE_NODE_TOKEN)")
		}
		a, err := agent.New(cfg)
		if err != nil {
			return "", err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		instance, err := a.Ping(pctx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", cfg.CoreURL, err)
		}
		return fmt.Sprintf("reached %s (replica %s), token accepted", cfg.CoreURL, instance), nil
	})
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

// gpus lists the GPUs nvidia-smi sees; without nvidia-smi (a CPU-only host,
// or no NVIDIA driver) there is nothing to check, which is not a failure.
func gpus(ctx context.Context) (string, error) {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return "skipped: no nvidia-smi (no NVIDIA driver on this host; CPU engines only)", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=name,memory.total", "--format=csv,noheader").Output()
	if err != nil {
		return "", fmt.Errorf("nvidia-smi: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return "", errors.New("nvidia-smi sees no GPU")
	}
	return fmt.Sprintf("%d GPU(s): %s", len(lines), strings.Join(lines, "; ")), nil
}
