package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/envflag"
)

const toolsUsage = `ytcaption-core tools fetch: download yt-dlp and Deno into a directory, each checked against its SHA-256
before it is installed (atomically, mode 0755). A tool whose checksum is already installed is not downloaded again.
Any failure — a checksum that differs or is missing, a plain-HTTP URL, a download over --max-bytes, a Deno zip that
holds anything but one "deno" — installs nothing. Take each release's URL and SHA-256 from its checksum file
(yt-dlp: SHA2-256SUMS; Deno: the .sha256sum beside the zip); docs/yt-dlp.md says where.

Usage: ytcaption-core tools fetch --dir DIR [flags]`

func toolsCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "fetch" {
		return toolsFetch(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		// fetch is the only subcommand: its help is the command's.
		return toolsFetch(ctx, []string{"--help"}, getenv, stdout)
	}
	return fmt.Errorf("%w: usage: ytcaption-core tools fetch --dir DIR (see ytcaption-core tools --help)", errUsage)
}

// tool is one program to fetch: the file it is installed as in the
// directory, where it comes from and its SHA-256 (of the download: the zip,
// for Deno).
type tool struct {
	name, url, sum string
	zipped         bool
}

type fetcher struct {
	dir       string
	client    *http.Client
	allowHTTP bool
	maxBytes  int64
	stdout    io.Writer
}

func toolsFetch(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tools fetch", flag.ContinueOnError)
	f := fetcher{stdout: stdout}
	yt := tool{name: "yt-dlp"}
	deno := tool{name: "deno", zipped: true}
	var timeout time.Duration
	fs.StringVar(&f.dir, "dir", "", "directory to install into, created if missing (required)")
	fs.StringVar(&yt.url, "yt-dlp-url", "", "https URL of a yt-dlp release binary (e.g. yt-dlp_linux: it bundles the EJS scripts)")
	fs.StringVar(&yt.sum, "yt-dlp-sha256", "", "its SHA-256, hex (required with --yt-dlp-url)")
	fs.StringVar(&deno.url, "deno-url", "", "https URL of a Deno release zip (the one for this machine: docs/yt-dlp.md)")
	fs.StringVar(&deno.sum, "deno-sha256", "", "the zip's SHA-256, hex (required with --deno-url)")
	fs.Int64Var(&f.maxBytes, "max-bytes", 200<<20, "refuse a download, or a binary inside a zip, larger than this")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "give up on the whole fetch after this long")
	fs.BoolVar(&f.allowHTTP, "allow-http", false, "accept plain-http URLs (for tests; the checksum still decides what is installed)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_TOOLS", toolsUsage, args, getenv, stdout); err != nil {
		return err
	}
	if f.dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	var tools []tool
	for _, t := range []tool{yt, deno} {
		if t.url == "" && t.sum == "" {
			continue
		}
		if err := f.validate(&t); err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, t.name, err)
		}
		tools = append(tools, t)
	}
	if len(tools) == 0 {
		return fmt.Errorf("%w: nothing to fetch: give --yt-dlp-url and --yt-dlp-sha256, --deno-url and --deno-sha256, or both pairs", errUsage)
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return fmt.Errorf("make tools directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	f.client = &http.Client{Transport: transport, CheckRedirect: f.checkRedirect}
	return f.fetch(ctx, tools)
}

func (f *fetcher) validate(t *tool) error {
	switch {
	case t.url == "":
		return errors.New("a checksum but no URL")
	case t.sum == "":
		return errors.New("no SHA-256: a download is installed only once its checksum matches")
	}
	t.sum = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(t.sum), "sha256:"))
	if b, err := hex.DecodeString(t.sum); err != nil || len(b) != sha256.Size {
		return errors.New("the SHA-256 is not 64 hex digits")
	}
	u, err := url.Parse(t.url)
	if err != nil || u.Host == "" {
		return errors.New("the URL is not an absolute URL")
	}
	return f.checkScheme(u)
}

func (f *fetcher) checkScheme(u *url.URL) error {
	if u.Scheme == "https" || (u.Scheme == "http" && f.allowHTTP) {
		return nil
	}
	return fmt.Errorf("refusing a %s URL (https only)", u.Scheme)
}

func (f *fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("too many redirects")
	}
	return f.checkScheme(req.URL)
}

// staged is a verified binary in a temp file in the directory, ready to be
// renamed into place.
type staged struct {
	tool tool
	tmp  string
	sum  string // of the binary itself
}

// fetch downloads and verifies every tool before installing any, so a
// failure leaves the directory as it was.
func (f *fetcher) fetch(ctx context.Context, tools []tool) error {
	var ready []staged
	defer func() {
		for _, s := range ready {
			os.Remove(s.tmp) // gone already once renamed
		}
	}()
	for _, t := range tools {
		if f.installed(t) {
			fmt.Fprintf(f.stdout, "%s: already installed in %s (sha256 %s)\n", t.name, f.dir, t.sum)
			continue
		}
		s, err := f.stage(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		ready = append(ready, s)
	}
	for _, s := range ready {
		dst := filepath.Join(f.dir, s.tool.name)
		if err := os.Rename(s.tmp, dst); err != nil {
			return fmt.Errorf("install %s: %w", s.tool.name, err)
		}
		if s.tool.zipped {
			if err := writeAtomic(f.dir, marker(s.tool.name), s.tool.sum+" "+s.sum+"\n"); err != nil {
				return fmt.Errorf("record %s's checksum: %w", s.tool.name, err)
			}
		}
		fmt.Fprintf(f.stdout, "%s: installed %s (sha256 %s)\n", s.tool.name, dst, s.tool.sum)
	}
	return syncDir(f.dir)
}

// marker names the file recording which download a zipped tool came from
// ("<zip sha256> <binary sha256>"): the binary's own checksum is not the one
// the operator gives.
func marker(name string) string { return "." + name + ".sha256" }

// installed reports whether the directory holds t with the checksum asked for.
func (f *fetcher) installed(t tool) bool {
	have, err := fileSum(filepath.Join(f.dir, t.name))
	if err != nil {
		return false
	}
	if !t.zipped {
		return have == t.sum
	}
	b, err := os.ReadFile(filepath.Join(f.dir, marker(t.name)))
	if err != nil {
		return false
	}
	zipSum, binSum, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return zipSum == t.sum && binSum == have
}

// stage downloads t into a temp file in the directory, checks its SHA-256
// and, for a zip, takes the one binary out of it.
func (f *fetcher) stage(ctx context.Context, t tool) (staged, error) {
	tmp, got, err := f.download(ctx, t)
	if err != nil {
		return staged{}, err
	}
	if got != t.sum {
		os.Remove(tmp)
		return staged{}, fmt.Errorf("checksum mismatch: the download's SHA-256 is %s, not %s: nothing installed", got, t.sum)
	}
	if t.zipped {
		zipped := tmp
		tmp, got, err = f.unzip(zipped, t.name)
		os.Remove(zipped)
		if err != nil {
			return staged{}, err
		}
	}
	return staged{tool: t, tmp: tmp, sum: got}, nil
}

func (f *fetcher) download(ctx context.Context, t tool) (path, sum string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("download: %s answered %s", req.URL.Host, resp.Status)
	}
	if resp.ContentLength > f.maxBytes {
		return "", "", fmt.Errorf("the download is %d bytes, over --max-bytes %d", resp.ContentLength, f.maxBytes)
	}
	return writeTemp(f.dir, t.name, resp.Body, f.maxBytes, "the download")
}

// unzip takes the single file called name out of the zip at path. A release
// zip holds that and nothing else: any other entry, a directory, a link or a
// path is refused, as is a file that inflates past --max-bytes.
func (f *fetcher) unzip(path, name string) (string, string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", "", fmt.Errorf("open zip: %w", err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != name || !zr.File[0].Mode().IsRegular() {
		var names []string
		for _, e := range zr.File {
			names = append(names, fmt.Sprintf("%q", e.Name))
		}
		return "", "", fmt.Errorf("the zip holds %s, not just the file %q: refused", strings.Join(names, ", "), name)
	}
	e := zr.File[0]
	if e.UncompressedSize64 > uint64(f.maxBytes) {
		return "", "", fmt.Errorf("%s inflates to %d bytes, over --max-bytes %d", name, e.UncompressedSize64, f.maxBytes)
	}
	rc, err := e.Open()
	if err != nil {
		return "", "", fmt.Errorf("open %s in the zip: %w", name, err)
	}
	defer rc.Close()
	// The header's size is the zip's claim: the limit holds whatever it says.
	return writeTemp(f.dir, name, rc, f.maxBytes, name+" inflated")
}

// writeTemp copies at most max bytes of r into a new executable temp file in
// dir and returns its path and SHA-256; past max it removes the file.
func writeTemp(dir, name string, r io.Reader, max int64, what string) (string, string, error) {
	tmp, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("%s is over --max-bytes %d", what, max)
	}
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", "", err
	}
	return tmp.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

func writeAtomic(dir, name, content string) error {
	tmp, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// syncDir makes the renames durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
