package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// TestLiteralAddressesFollowTheOneAddressPolicy: the zone case and
// the forms the old check let through (zones, NAT64, 6to4, IPv4-compatible,
// site-local, inet_aton numbers) are refused when a job or webhook is
// submitted; the dev stack admits loopback but never a zone or metadata.
func TestLiteralAddressesFollowTheOneAddressPolicy(t *testing.T) {
	t.Parallel()
	strict, dev := &JobService{}, &JobService{policy: egress.Policy{AllowPrivate: true}}
	for _, u := range []string{
		"http://[::1%25lo]:8080/a.wav", "http://[fe80::1%25eth0]/a.wav", "http://127.0.0.1%25lo/a.wav",
		"http://[64:ff9b::7f00:1]/a.wav", "http://[2002:7f00:1::]/a.wav", "http://[::127.0.0.1]/a.wav", "http://[fec0::1]/a.wav",
		"http://2130706433/a.wav", "http://0x7f000001/a.wav", "http://0177.0.0.1/a.wav", "http://127.1/a.wav",
		"http://127.0.0.1./a.wav", "http://localhost./a.wav", "http://good.example@127.0.0.1/a.wav", "http://１２７.０.０.１/a.wav",
	} {
		require.Equal(t, job.CodeInvalidURL, job.CodeOf(strict.checkLiteralAddress(u)), u)
	}
	require.NoError(t, dev.checkLiteralAddress("http://localhost:8080/a.wav"))
	require.NoError(t, dev.checkLiteralAddress("http://[::1]:8080/a.wav"))
	for _, u := range []string{"http://[::1%25lo]:8080/a.wav", "http://169.254.169.254/latest", "http://0.0.0.0:8080/a.wav"} {
		require.Equal(t, job.CodeInvalidURL, job.CodeOf(dev.checkLiteralAddress(u)), "dev stack: %s", u)
	}
	err := strict.checkWebhookURL("http://[::1%25lo]:9000/hooks")
	require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err), "%v", err)
}
