package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ytcaption/ytcaption/core"
)

// minTokenLen is the shortest service or node token serve takes without a
// warning: 32 characters, 128 bits in hex.
const minTokenLen = 32

// insecurity is one insecure setting and what it exposes.
type insecurity struct{ setting, risk string }

// insecureSettings lists what in cfg an attacker on the network could use:
// serve logs each loudly, then runs anyway (the operator may know better).
// hostAddrs lists this host's interface addresses.
func insecureSettings(cfg core.Config, hostAddrs func() []netip.Addr) []insecurity {
	var out []insecurity
	add := func(setting, risk string) { out = append(out, insecurity{setting, risk}) }
	if cfg.PostgresURL != "" {
		out = append(out, insecureDatabase(cfg.PostgresURL)...)
	}
	if cfg.S3Endpoint != "" && !cfg.S3UseSSL && !isLocalHost(hostOf(cfg.S3Endpoint)) {
		add("--s3-use-ssl=false", "audio and transcripts travel to the S3 endpoint "+cfg.S3Endpoint+" unencrypted, with the access key's signatures")
	}
	if cfg.AllowPrivateURLs {
		add("--allow-private-urls", "jobs may fetch from loopback and private addresses: anyone with an API key can reach this host's and this network's internal services (SSRF)")
	}
	if len(cfg.ServiceToken) < minTokenLen {
		add("--service-token", "shorter than 32 characters: guessable; whoever has it can act as any user")
	}
	for _, t := range cfg.NodeTokens {
		if len(t) < minTokenLen {
			add("--node-tokens", "a node token shorter than 32 characters: guessable; whoever has it can take jobs and write transcripts")
			break
		}
	}
	if cfg.MetricsAddr != "" {
		if public, ok := publicListen(cfg.MetricsAddr, hostAddrs); ok {
			add("--metrics-addr="+cfg.MetricsAddr, "metrics are served on the public address "+public+": bind them to a private address or firewall the port")
		}
	}
	if cfg.NomadAddr != "" && cfg.NomadToken != "" {
		if u, err := url.Parse(cfg.NomadAddr); err == nil && u.Scheme == "http" && !isLocalHost(u.Hostname()) {
			add("--nomad-addr", "the Nomad ACL token (node:write) travels to "+u.Host+" unencrypted")
		}
	}
	return out
}

// insecureDatabase checks a PostgreSQL URL: to a host other than this one,
// it needs a password and TLS that verifies the server.
func insecureDatabase(raw string) []insecurity {
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return nil // core.New reports it
	}
	if isLocalHost(cfg.Host) {
		return nil
	}
	var out []insecurity
	if cfg.Password == "" {
		out = append(out, insecurity{"--postgres-url", "no password for the database at " + cfg.Host + ": whoever reaches it may be let in"})
	}
	plain := cfg.TLSConfig == nil
	for _, f := range cfg.Fallbacks {
		plain = plain || f.TLSConfig == nil
	}
	switch {
	case plain:
		out = append(out, insecurity{"--postgres-url", "sslmode allows plaintext to the database at " + cfg.Host + ": jobs, keys' hashes and the password travel unencrypted (use sslmode=verify-full)"})
	case cfg.TLSConfig.InsecureSkipVerify && cfg.TLSConfig.VerifyPeerCertificate == nil: // sslmode=require (verify-ca checks the CA)
		out = append(out, insecurity{"--postgres-url", "TLS to the database at " + cfg.Host + " does not verify the server: anyone in between can read it (use sslmode=verify-full)"})
	}
	return out
}

// warnInsecure logs each insecure setting as a warning of its own.
func warnInsecure(ctx context.Context, log *slog.Logger, cfg core.Config) {
	for _, i := range insecureSettings(cfg, interfaceAddrs) {
		log.WarnContext(ctx, "INSECURE SETTING", "setting", i.setting, "risk", i.risk)
	}
}

// hostOf is host:port's host, or the whole string without a port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// isLocalHost says whether host is this machine: a loopback address,
// "localhost", or a Unix socket directory.
func isLocalHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasPrefix(host, "/") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// publicListen returns a public address a listen address reaches, if any:
// the address itself, or for every interface (":8021") the first public
// address among hostAddrs — a host on private networks only stays quiet.
func publicListen(addr string, hostAddrs func() []netip.Addr) (string, bool) {
	host := hostOf(addr)
	if isLocalHost(host) {
		return "", false
	}
	a, err := netip.ParseAddr(host)
	switch {
	case host == "" || (err == nil && a.Unmap().IsUnspecified()):
		for _, h := range hostAddrs() {
			if isPublic(h) {
				return h.String(), true
			}
		}
		return "", false
	case err != nil:
		return host, true // a name: whatever it resolves to
	}
	if !isPublic(a) {
		return "", false
	}
	return a.String(), true
}

// isPublic says whether a is reachable beyond this host and private networks.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified())
}

// interfaceAddrs lists this host's interface addresses.
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
