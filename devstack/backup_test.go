package devstack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// coreBinary is ytcaption-core.
func coreBinary(t *testing.T) string { return goBinary(t, "../core/cmd/ytcaption-core") }

// TestBackupWipeRestore backs up a live stack with finished jobs, wipes its
// database and bucket, restores, and finds every job and transcript back and
// new jobs running.
func TestBackupWipeRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startStack(t, "yt-dlp")
	media, refs := mediaServer(t)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	ids := []string{}
	transcripts := map[string]string{}
	for _, clip := range []string{firstClip(refs), "sense_and_sensibility_01_austen_64kb-0890"} {
		j := api.waitFor(api.create(media+"/"+clip+".ogg").ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status)
		_, srt := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=srt", nil)
		ids, transcripts[j.ID] = append(ids, j.ID), string(srt)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "YTCAPTION_CORE_POSTGRES_URL=" + s.DBURL,
		"YTCAPTION_CORE_S3_ENDPOINT=" + s.Config.S3Endpoint, "YTCAPTION_CORE_S3_ACCESS_KEY=" + s.Config.S3AccessKey,
		"YTCAPTION_CORE_S3_SECRET_KEY=" + s.Config.S3SecretKey, "YTCAPTION_CORE_S3_BUCKET=" + s.Config.S3Bucket}
	runCore := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(coreBinary(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	require.Contains(t, runCore("backup", "--out", dir), "backed up the database and")

	// Disaster: the stack stops, the database and the bucket are wiped.
	s.Stop()
	conn, err := pgx.Connect(ctx, s.DBURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	require.NoError(t, err)
	conn.Close(ctx)
	keys := bucketKeys(t, s.Config)
	require.NotEmpty(t, keys)
	mc := bucketClient(t, s.Config)
	for _, k := range keys {
		require.NoError(t, mc.RemoveObject(ctx, s.Config.S3Bucket, k, minio.RemoveObjectOptions{}))
	}

	require.Contains(t, runCore("restore", "--from", dir), "restored the backup")
	require.ElementsMatch(t, keys, bucketKeys(t, s.Config), "every blob is back")

	s2 := startStackWith(t, "yt-dlp", func(c *Config) {
		c.PostgresURL, c.S3Endpoint, c.S3AccessKey, c.S3SecretKey, c.S3Bucket = s.DBURL, s.Config.S3Endpoint, s.Config.S3AccessKey, s.Config.S3SecretKey, s.Config.S3Bucket
		c.APIKey = s.APIKey
	})
	api2 := client{t: t, base: s2.EdgeURL, key: s.APIKey}
	for _, id := range ids {
		require.Equal(t, "succeeded", api2.get(id).Status)
		code, srt := api2.do("GET", "/v1/jobs/"+id+"/transcript?format=srt", nil)
		require.Equal(t, 200, code)
		require.Equal(t, transcripts[id], string(srt), "the transcript is back")
	}
	j := api2.waitFor(api2.create(media+"/sense_and_sensibility_01_austen_64kb-0920.ogg").ID, 2*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "new jobs still run")
}

// bucketClient talks to the stack's bucket as an operator's S3 tool would.
func bucketClient(t *testing.T, cfg Config) *minio.Client {
	t.Helper()
	mc, err := minio.New(cfg.S3Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.S3AccessKey, cfg.S3SecretKey, "")})
	require.NoError(t, err)
	return mc
}

// bucketKeys lists every object in the stack's bucket.
func bucketKeys(t *testing.T, cfg Config) []string {
	t.Helper()
	var keys []string
	for o := range bucketClient(t, cfg).ListObjects(context.Background(), cfg.S3Bucket, minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key)
	}
	return keys
}
