package devstack

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const listModelsScript = `
const OpenAI = require("openai");
const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
(async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  console.log(JSON.stringify(models));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestOpenAIClientListsModels runs the official openai npm client's
// models.list() against GET /v1/models: the stack's gpu-node (pocketsphinx)
// is what it lists, with the fields OpenAI's Model object has.
func TestOpenAIClientListsModels(t *testing.T) {
	t.Parallel()
	dir := openAIClient(t)
	s := startStack(t, "yt-dlp")
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	// The node has called in once it has taken a job: then it is on offer.
	media, _ := mediaServer(t)
	j := api.create(media + "/sense_and_sensibility_01_austen_64kb-0880.ogg")
	api.waitFor(j.ID, 2*time.Minute, terminal)

	script := filepath.Join(t.TempDir(), "models.js")
	require.NoError(t, os.WriteFile(script, []byte(listModelsScript), 0o644))
	cmd := exec.Command("node", script, s.EdgeURL+"/v1", s.APIKey)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, stderr)
	var models []struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
		Engine  string `json:"engine"`
	}
	require.NoError(t, json.Unmarshal(out, &models), string(out))
	require.Len(t, models, 1, string(out))
	m := models[0]
	require.Equal(t, "model", m.Object)
	require.Equal(t, "sphinx", m.OwnedBy)
	require.Equal(t, "sphinx", m.Engine)
	require.NotEmpty(t, m.ID)
	require.Greater(t, m.Created, int64(1.7e9))

	// Without a key it is refused like every /v1 call.
	code, b := client{t: t, base: s.EdgeURL}.do("GET", "/v1/models", nil)
	require.Equal(t, 401, code, string(b))
}
