package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
)

// serveWarnings runs `serve` with args on a context that is already done
// — it stops at the database, after its checks — and returns the settings
// its INSECURE SETTING warnings name.
func serveWarnings(t *testing.T, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr bytes.Buffer
	err := run(ctx, append([]string{"serve"}, args...), func(string) string { return "" }, io.Discard, &stderr)
	require.Error(t, err, "no database on a done context")
	var settings []string
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		var line struct{ Level, Msg, Setting, Risk string }
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "INSECURE SETTING" {
			continue
		}
		require.Equal(t, "WARN", line.Level)
		require.NotEmpty(t, line.Risk, line.Setting)
		settings = append(settings, line.Setting)
	}
	return settings
}

const longToken = "0123456789abcdef0123456789abcdef"

func TestServeWarnsOfEveryInsecureSetting(t *testing.T) {
	t.Parallel()
	got := serveWarnings(t,
		"--postgres-url", "postgres://app@db.example.com:5432/ytcaption?sslmode=disable",
		"--s3-endpoint", "minio.example.com:9000", "--s3-access-key", "k", "--s3-secret-key", "s",
		"--allow-private-urls", "--service-token", "short", "--node-tokens", longToken+",also-short",
		"--metrics-addr", "203.0.113.5:8021", "--nomad-addr", "http://nomad.example.com:4646", "--nomad-token", "secret")
	require.ElementsMatch(t, []string{
		"--postgres-url", // no password
		"--postgres-url", // plaintext
		"--s3-use-ssl=false",
		"--allow-private-urls",
		"--service-token",
		"--node-tokens",
		"--metrics-addr=203.0.113.5:8021",
		"--nomad-addr",
	}, got)

	require.Equal(t, []string{"--postgres-url"},
		serveWarnings(t, "--postgres-url", "postgres://app:pw@10.1.2.3/ytcaption?sslmode=require", "--service-token", longToken,
			"--node-tokens", longToken, "--metrics-addr", "10.1.2.4:8021"),
		"TLS that does not verify the server")
	require.Equal(t, []string{"--metrics-addr=metrics.example.com:8021"},
		serveWarnings(t, "--postgres-url", "postgres://app:pw@db.example.com/ytcaption?sslmode=verify-full", "--service-token", longToken,
			"--node-tokens", longToken, "--metrics-addr", "metrics.example.com:8021"))
}

func TestServeIsQuietWhenSettingsAreSafe(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		// The default database URL: passwordless, plaintext, but on loopback.
		{"--service-token", longToken, "--node-tokens", longToken, "--metrics-addr", "127.0.0.1:8021"},
		{"--postgres-url", "postgres://app:pw@db.example.com/ytcaption?sslmode=verify-full", "--s3-endpoint", "s3.example.com", "--s3-use-ssl",
			"--service-token", longToken, "--node-tokens", longToken + "," + strings.ToUpper(longToken), "--metrics-addr", "[fd00::1]:8021",
			"--nomad-addr", "https://nomad.example.com:4646", "--nomad-token", "secret"},
		{"--postgres-url", "host=/var/run/postgresql dbname=ytcaption", "--s3-endpoint", "127.0.0.1:9000",
			"--service-token", longToken, "--node-tokens", longToken, "--metrics-addr", ""},
	} {
		require.Empty(t, serveWarnings(t, args...), "%q", args)
	}
}

func TestMetricsOnAPublicAddressAreFound(t *testing.T) {
	t.Parallel()
	private := func() []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fe80::1")}
	}
	public := func() []netip.Addr { return append(private(), netip.MustParseAddr("198.51.100.20")) }
	for _, tc := range []struct {
		addr  string
		addrs func() []netip.Addr
		want  string // the public address, "" for none
	}{
		{":8021", public, "198.51.100.20"},
		{"0.0.0.0:8021", public, "198.51.100.20"},
		{"[::]:8021", public, "198.51.100.20"},
		{":8021", private, ""}, // every interface of a host on private networks only
		{"203.0.113.5:8021", private, "203.0.113.5"},
		{"[2001:db8::1]:8021", private, "2001:db8::1"},
		{"metrics.example.com:8021", private, "metrics.example.com"},
		{"127.0.0.1:8021", public, ""},
		{"[::1]:8021", public, ""},
		{"localhost:8021", public, ""},
		{"10.0.0.5:8021", public, ""},
		{"192.168.1.2:8021", public, ""},
		{"[fd12::5]:8021", public, ""},
	} {
		got, ok := publicListen(tc.addr, tc.addrs)
		require.Equal(t, tc.want != "", ok, tc.addr)
		require.Equal(t, tc.want, got, tc.addr)
	}
	found := insecureSettings(core.Config{ServiceToken: longToken, NodeTokens: []string{longToken}, MetricsAddr: ":8021"}, public)
	require.Equal(t, []insecurity{{"--metrics-addr=:8021", "metrics are served on the public address 198.51.100.20: bind them to a private address or firewall the port"}}, found)
}
