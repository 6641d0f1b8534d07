package security

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// upload sends a file as a job through the edge's Connect front door and
// returns the job's id.
func (s *stack) upload(key, name string, data []byte, opts ...func(*ytcaptionv1.UploadJobRequest)) (string, error) {
	client := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, s.frontURL)
	msg := &ytcaptionv1.UploadJobRequest{Filename: name, Data: data, Language: "en"}
	for _, o := range opts {
		o(msg)
	}
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.UploadJob(ctx, req)
	if err != nil {
		return "", err
	}
	return resp.Msg.GetJob().GetId(), nil
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

// lyingMatroska writes a Matroska file that holds 150 s of audio but whose
// header says it lasts 1 s: the Segment's Duration element is patched.
func lyingMatroska(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "long.mka")
	run(t, "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=150", "-c:a", "libvorbis", path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := strings.Index(string(b), "\x44\x89\x88") // Duration, an 8-byte float in TimecodeScale units (ms)
	require.Positive(t, i, "no Duration element")
	binary.BigEndian.PutUint64(b[i+3:], math.Float64bits(1000))
	return b
}

// TestLyingContainerIsMeasuredByItsDecodedAudio uploads a Matroska file
// that claims 1 s and holds 150 s to a core whose limit is 60 s: the job
// fails too_long. Under a 300 s limit the same file is transcribed and its
// duration — what billing reads — is the 150 s core decoded, not the 1 s
// the header claimed.
func TestLyingContainerIsMeasuredByItsDecodedAudio(t *testing.T) {
	t.Parallel()
	lying := lyingMatroska(t)
	s := startStack(t, options{maxLength: "60s", noNode: true})
	id, err := s.upload(s.key, "short.mka", lying)
	require.NoError(t, err)
	j := s.waitJob(s.key, id, 2*time.Minute)
	require.Equal(t, "failed", j["status"])
	require.Equal(t, "too_long", errorCode(j), "%v", j["error"])

	s = startStack(t, options{maxLength: "300s", noNode: true})
	id, err = s.upload(s.key, "short.mka", lying)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r := call(t, http.MethodGet, s.edgeURL+"/v1/jobs/"+id, s.key, nil)
		j = r.json
		return j["status"] == "ready" || j["status"] == "failed"
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(t, "ready", j["status"], "%v", j["error"])
	media, _ := j["media"].(map[string]any)
	require.InDelta(t, 150, media["duration_seconds"], 1, "the duration recorded is the decoded audio's")
}

// TestPlaylistsCannotMakeCoreReadLocalFiles uploads an HLS playlist and an
// ffconcat script — named as media and as an innocent .bin — that name a
// local file holding speech. Core must not decode that file: the jobs fail,
// and no transcript carries the secret's words.
func TestPlaylistsCannotMakeCoreReadLocalFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	secret := filepath.Join(dir, "secret.ts")
	wav := filepath.Join(dir, "secret.wav")
	run(t, "flite", "-voice", "slt", "-t", "the launch code is seven seven three", "-o", wav)
	run(t, "ffmpeg", "-loglevel", "error", "-y", "-i", wav, "-c:a", "mp2", "-f", "mpegts", secret)
	hls := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nfile://" + secret + "\n#EXT-X-ENDLIST\n"
	concat := "ffconcat version 1.0\nfile '" + secret + "'\n"

	s := startStack(t, options{})
	for _, f := range []struct{ name, body string }{
		{"playlist.m3u8", hls}, {"innocent.bin", hls}, {"list.ffconcat", concat}, {"song.mp3", concat},
	} {
		id, err := s.upload(s.key, f.name, []byte(f.body))
		require.NoError(t, err, f.name)
		j := s.waitJob(s.key, id, 2*time.Minute)
		require.Equal(t, "failed", j["status"], "%s: core decoded what the playlist named", f.name)
		require.Contains(t, []string{"not_media", "transcode_failed", "empty_media"}, errorCode(j), f.name)
		r := call(t, http.MethodGet, s.edgeURL+"/v1/jobs/"+id+"/transcript?format=txt", s.key, nil)
		require.NotContains(t, strings.ToLower(string(r.body)), "launch", f.name)
	}
}
