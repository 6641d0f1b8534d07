// Command ytcaption-gpu-node runs a gpu-node agent: it pulls transcription jobs
// from core, runs a speech engine and streams the transcript back.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/internal/discovery"
	"github.com/ytcaption/ytcaption/internal/envflag"
	"github.com/ytcaption/ytcaption/internal/metricsrv"
	"github.com/ytcaption/ytcaption/internal/tracing"
)

var version = "dev"

func main() {
	// The first SIGTERM (or Ctrl-C) drains: no new jobs, the current one
	// finishes. The second stops at once and hands the current job back.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	drain := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "ytcaption-gpu-node: draining: finishing the current job; signal again to stop now")
		close(drain)
		<-sigs
		stop()
	}()
	if err := run(ctx, drain, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(envflag.ExitStatus("ytcaption-gpu-node", err, os.Stderr))
	}
}

var errUsage = envflag.ErrUsage

const summary = `ytcaption-gpu-node pulls transcription jobs from ytcaption core, runs a speech engine
(sphinx: pocketsphinx on CPU; openai: any OpenAI-compatible /v1/audio/transcriptions server such as
vLLM, speaches or whisper.cpp's server; whispercpp: the whisper.cpp CLI) and streams segments back.

Usage: ytcaption-gpu-node --core-url URL --node-token TOKEN [flags]
       ytcaption-gpu-node eval [--dir DIR] [--sclite] [engine flags]   measure the engine: WER and real-time factor
       ytcaption-gpu-node doctor [flags]   check the engine, the GPU, and reaching core with the token

The first SIGTERM or Ctrl-C drains the node (no new jobs; the jobs in hand finish);
a second one stops it at once and hands the jobs in hand back to core.`

// run runs the agent until ctx ends (hard stop) or drain is closed (finish
// the current job, then stop).
func run(ctx context.Context, drain <-chan struct{}, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "eval" {
		return evaluate(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "doctor" {
		return doctor(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("ytcaption-gpu-node", flag.ContinueOnError)
	var cfg agent.Config
	var logFormat, metricsAddr, advertise, otlpEndpoint string
	coreFlags(fs, &cfg)
	fs.StringVar(&cfg.WorkDir, "work-dir", os.TempDir(), "directory for audio files being transcribed: the node keeps them in ytcaption-gpu-node-<node id> there, emptied at start")
	fs.IntVar(&cfg.Slots, "slots", 1, fmt.Sprintf("jobs transcribed at once, 1..%d, each with its own poll, prefetch, lease and heartbeat: more than 1 pays for an engine that serves requests side by side (an OpenAI-compatible server that batches, e.g. vLLM or a batched faster-whisper)", agent.MaxSlots))
	fs.StringVar(&advertise, "advertise-addr", "", "host other machines reach this node's metrics at, for Consul (default: the host name)")
	engineFlags(fs, &cfg)
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&metricsAddr, "metrics-addr", ":8030", "serve Prometheus metrics on this address (empty: off)")
	fs.StringVar(&otlpEndpoint, "otlp-endpoint", "", "OpenTelemetry collector for traces, OTLP/HTTP (host:4318 or a URL; empty: no tracing)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_GPU_NODE", summary, args, getenv, stdout); err != nil {
		return err
	}
	if cfg.NodeToken == "" {
		return fmt.Errorf("%w: --node-token (or YTCAPTION_GPU_NODE_NODE_TOKEN) is required", errUsage)
	}
	if cfg.Slots < 1 || cfg.Slots > agent.MaxSlots {
		return fmt.Errorf("%w: --slots %d: between 1 and %d", errUsage, cfg.Slots, agent.MaxSlots)
	}
	log, err := tracing.NewLogger(logFormat, stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg.Logger = log
	tp, stop, err := tracing.Provider(ctx, "ytcaption-gpu-node", otlpEndpoint)
	if err != nil {
		return err
	}
	defer stop()
	cfg.TracerProvider = tp
	cfg.Version = version
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = reg
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if metricsAddr != "" {
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		srv := metricsrv.Server(map[string]http.Handler{"/metrics": metricsrv.Handler(reg)})
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		if cfg.ConsulAddr != "" {
			// Registered by its metrics port: Prometheus finds the fleet there.
			deregister, err := discovery.RegisterListener(ctx, cfg.ConsulAddr, "ytcaption-gpu-node", "", advertise, ln, "/metrics")
			if err != nil {
				cfg.Logger.WarnContext(ctx, "register with consul (running anyway)", "err", err)
			} else {
				defer deregister()
			}
		}
	}
	go func() {
		select {
		case <-drain:
			a.Drain()
		case <-ctx.Done():
		}
	}()
	return a.Run(ctx)
}
