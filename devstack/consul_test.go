package devstack

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/consultest"
)

// TestStackWithConsul: core and the edge register themselves (checked on
// /health/ready) and deregister on shutdown; the edge and the gpu-node find
// core through Consul's health query. Consul is a stand-in that speaks its
// documented HTTP API.
func TestStackWithConsul(t *testing.T) {
	t.Parallel()
	consul := consultest.Start(t)
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.ConsulAddr = consul.Addr() })
	core, err := url.Parse(s.CoreURL)
	require.NoError(t, err)
	consul.Set(2, core.Host) // the healthy core Consul reports

	var coreReg, edgeReg map[string]any
	require.Eventually(t, func() bool {
		coreReg, edgeReg = consul.RegisteredService("ytcaption-core"), consul.RegisteredService("ytcaption-edge")
		return coreReg != nil && edgeReg != nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, core.Port(), strconv.Itoa(int(coreReg["Port"].(float64))))
	require.Equal(t, "http://"+core.Host+"/health/ready", coreReg["Check"].(map[string]any)["HTTP"])
	edge, err := url.Parse(s.EdgeURL)
	require.NoError(t, err)
	require.Equal(t, edge.Port(), strconv.Itoa(int(edgeReg["Port"].(float64))))

	media, refs := mediaServer(t)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	j := api.waitFor(api.create(media+"/"+firstClip(refs)+".ogg").ID, 2*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status)
	require.Contains(t, consul.Indexes(), "2", "the edge and the gpu-node follow core's health with blocking queries")

	// Dynamic settings: an operator pauses intake in Consul's KV store; core
	// refuses new jobs until it is open again.
	consul.PutKV(3, "ytcaption/core/intake", "paused")
	require.Eventually(t, func() bool {
		code, b := api.do("POST", "/v1/jobs", map[string]string{"url": media + "/" + firstClip(refs) + ".ogg"})
		return code == http.StatusServiceUnavailable && errorCode(t, b) == "intake_paused"
	}, 10*time.Second, 50*time.Millisecond, "a paused intake refuses new jobs")
	consul.PutKV(4, "ytcaption/core/intake", "open")
	require.Eventually(t, func() bool {
		code, _ := api.do("POST", "/v1/jobs", map[string]string{"url": media + "/" + firstClip(refs) + ".ogg"})
		return code == http.StatusAccepted
	}, 10*time.Second, 50*time.Millisecond, "and takes them again once it is open")

	s.Stop()
	require.ElementsMatch(t, []string{coreReg["ID"].(string), edgeReg["ID"].(string)}, consul.Removed(), "deregistered on shutdown")
}
