package render

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// validateTTML checks documents against the W3C schemas of TTML1 and the
// IMSC1 extensions, vendored under testdata/ttml-schema so this works
// offline, with libxml2's xmllint — one run for all of them.
func validateTTML(t *testing.T, docs map[string][]byte) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint is not installed (make deps installs it, Debian package libxml2-utils)")
	}
	dir := t.TempDir()
	args := []string{"--noout", "--nonet", "--schema", filepath.Join("testdata", "ttml-schema", "imsc1-text.xsd")}
	for name, doc := range docs {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, doc, 0o644))
		args = append(args, path)
	}
	out, err := exec.Command("xmllint", args...).CombinedOutput()
	require.NoError(t, err, "xmllint: %s", out)
	require.Equal(t, len(docs), strings.Count(string(out), " validates\n"), "%s", out)
}

// TestTTMLValidatesAgainstIMSC1Schema: the golden documents, one with no
// cue at all, and the TTML of hundreds of messy transcripts (markup, XML
// specials, bad language tags, invalid UTF-8) are valid IMSC1 Text
// Profile documents by the schema.
func TestTTMLValidatesAgainstIMSC1Schema(t *testing.T) {
	t.Parallel()
	docs := map[string][]byte{}
	for i, tr := range append(randomTranscripts(200), transcript(false), transcript(true), job.Transcript{}) {
		out, err := Render(TTML, tr, Options{})
		require.NoError(t, err)
		docs[fmt.Sprintf("t%03d.ttml", i)] = out
	}
	validateTTML(t, docs)
}

// TestTTMLSchemaCatchesInvalidDocuments: the schema check fails on what
// it should, or passing it would mean nothing.
func TestTTMLSchemaCatchesInvalidDocuments(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint is not installed (make deps installs it, Debian package libxml2-utils)")
	}
	good, err := Render(TTML, transcript(true), Options{})
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"no-lang":        bytes.Replace(good, []byte(` xml:lang="en"`), nil, 1),
		"bad-imsc1-bool": bytes.Replace(good, []byte(`ittp:progressivelyDecodable="true"`), []byte(`ittp:progressivelyDecodable="yes"`), 1),
		"p-in-head":      bytes.Replace(good, []byte(`<styling>`), []byte(`<p/><styling>`), 1),
		"bad-lang":       bytes.Replace(good, []byte(`xml:lang="en"`), []byte(`xml:lang="not a language"`), 1),
	} {
		path := filepath.Join(t.TempDir(), name+".ttml")
		require.NoError(t, os.WriteFile(path, bad, 0o644))
		out, err := exec.Command("xmllint", "--noout", "--nonet", "--schema", filepath.Join("testdata", "ttml-schema", "imsc1-text.xsd"), path).CombinedOutput()
		require.Error(t, err, "%s validated: %s", name, out)
	}
}

// burnASS draws an ASS file onto a 640x360 black frame at second at with
// ffmpeg's ass filter (libass), and returns the frame's RGB pixels. It fails
// on any ffmpeg error and on any warning libass gives about the file.
func burnASS(t *testing.T, doc []byte, at string) []byte {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "captions.ass")
	require.NoError(t, os.WriteFile(path, doc, 0o644))
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
		"-f", "lavfi", "-i", "color=c=black:size=640x360:duration=3", "-vf", "ass=captions.ass",
		"-ss", at, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "ffmpeg: %s", stderr.String())
	require.NotContains(t, stderr.String(), "Parsed_ass", "libass complained")
	require.Equal(t, 640*360*3, stdout.Len(), "one frame: %s", stderr.String())
	return stdout.Bytes()
}

// pixels counts the frame's pixels that match.
func pixels(frame []byte, match func(r, g, b byte) bool) int {
	n := 0
	for i := 0; i+2 < len(frame); i += 3 {
		if match(frame[i], frame[i+1], frame[i+2]) {
			n++
		}
	}
	return n
}

func white(r, g, b byte) bool { return r > 200 && g > 200 && b > 200 }
func gold(r, g, b byte) bool  { return r > 200 && g > 150 && g < 235 && b < 80 }

// TestASSBurnsOntoVideo opens the rendered ASS with ffmpeg's ass filter, as
// a player or an encoder burning captions in would: plain captions draw
// white text, karaoke draws the words already spoken in gold and the rest
// in white, and a frame with no cue stays black.
func TestASSBurnsOntoVideo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg is not installed (make deps installs it)")
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-filters").Output(); err != nil || !bytes.Contains(out, []byte(" ass ")) {
		t.Skip("this ffmpeg is built without libass: it has no ass filter")
	}
	plain, err := Render(ASS, transcript(true), Options{})
	require.NoError(t, err)
	frame := burnASS(t, plain, "1.5")
	require.Greater(t, pixels(frame, white), 500, "no caption drawn")
	require.Zero(t, pixels(frame, gold), "gold without karaoke")

	karaoke, err := Render(ASS, transcript(true), Options{Karaoke: true})
	require.NoError(t, err)
	frame = burnASS(t, karaoke, "1.5") // some words of the first cue spoken, some not
	require.Greater(t, pixels(frame, gold), 200, "no word highlighted")
	require.Greater(t, pixels(frame, white), 200, "every word highlighted at once")

	frame = burnASS(t, plain, "0.1") // before the first cue
	require.Zero(t, pixels(frame, func(r, g, b byte) bool { return r > 40 || g > 40 || b > 40 }), "something drawn with no cue on screen")

	// Messy text in every line shape, karaoke or not: libass reads it all
	// without a warning.
	for i, tr := range randomTranscripts(6) {
		o := Options{Karaoke: i%2 == 0, MaxLineChars: []int{16, 42, 80}[i%3], MaxLines: 1 + i%3}
		out, err := Render(ASS, tr, o)
		require.NoError(t, err)
		burnASS(t, out, "1")
	}
}
