package devstack

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	agent "github.com/ytcaption/ytcaption/gpu-node"
)

// pipelineRepeats is how many times the batch holds each LibriVox clip.
const pipelineRepeats = 2

// BenchmarkPipelineOverhead submits a batch of LibriVox jobs at once to the
// whole stack — edge, core's download stage (HTTP + ffmpeg), MinIO, dispatch,
// one gpu-node running pocketsphinx — and divides the batch's wall time by
// the engine's own time on the same audio, decoded one clip after another
// with nothing else running. With prefetch the network and the download
// stage hide behind the engine, so the ratio stays close to 1.
func BenchmarkPipelineOverhead(b *testing.B) {
	media, refs := mediaServer(b)
	var clips []string
	for id := range refs {
		clips = append(clips, id)
	}
	slices.Sort(clips)
	ctx := context.Background()
	for b.Loop() {
		// The engine alone, on the audio core makes of each clip (Ogg → 16 kHz mono WAV).
		eng, err := agent.New(agent.Config{CoreURL: "http://127.0.0.1:1", NodeToken: "unused", Engine: "sphinx"})
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		var engineTime time.Duration
		for range pipelineRepeats {
			for _, id := range clips {
				wav := filepath.Join(dir, id+".wav")
				ffmpeg(b, "-i", media+"/"+id+".ogg", "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", wav)
				start := time.Now()
				if _, err := eng.TranscribeFile(ctx, wav, "en"); err != nil {
					b.Fatal(err)
				}
				engineTime += time.Since(start)
			}
		}

		s := startStack(b, "yt-dlp")
		c := client{t: b, base: s.EdgeURL, key: s.APIKey}
		start := time.Now()
		var ids []string
		for r := range pipelineRepeats {
			for _, id := range clips {
				// Distinct URLs: a repeat must be transcribed, not served from the transcript cache.
				ids = append(ids, c.create(fmt.Sprintf("%s/%s.ogg?repeat=%d", media, id, r)).ID)
			}
		}
		var last time.Time
		for _, id := range ids {
			j := c.waitFor(id, 5*time.Minute, terminal)
			if j.Status != "succeeded" {
				b.Fatalf("job %s ended %s: %+v", id, j.Status, j.Error)
			}
			finished, err := time.Parse(time.RFC3339Nano, j.FinishedAt)
			if err != nil {
				b.Fatal(err)
			}
			if finished.After(last) {
				last = finished
			}
		}
		wall := last.Sub(start)
		ratio := wall.Seconds() / engineTime.Seconds()
		b.ReportMetric(ratio, "overhead")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(engineTime.Seconds(), "engine-s")
		fmt.Printf("pipeline: %d LibriVox jobs, 1 gpu-node (pocketsphinx): wall %.2f s / engine alone %.2f s = overhead %.3f\n",
			len(ids), wall.Seconds(), engineTime.Seconds(), ratio)
	}
}
