// Package coreclient builds the Connect clients the edge uses to reach core,
// each request carrying the edge's service token. Creations that arrive
// together reach core in one call (see jobs).
package coreclient

import (
	"net/http"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/internal/discovery"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/tracing"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Clients are core's services as the edge sees them.
type Clients struct {
	Jobs    ytcaptionv1connect.JobServiceClient // CreateJob gathered: see jobs
	Batches ytcaptionv1connect.BatchServiceClient
	Auth    ytcaptionv1connect.AuthServiceClient
	Admin   ytcaptionv1connect.AdminServiceClient
	Edge    ytcaptionv1connect.EdgeServiceClient  // the job change feed
	Shares  ytcaptionv1connect.ShareServiceClient // share links, opened without a user
	HTTP    *http.Client                          // plain calls such as core's /health/ready, with the token
}

// New returns clients for core at baseURL; with a resolver, each request goes
// to a healthy core instance Consul knows (baseURL's host when it knows none).
// Calls are traced with tp (nil: not), their trace context sent to core.
func New(baseURL, serviceToken string, resolver *discovery.Resolver, tp trace.TracerProvider) Clients {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256 // the edge multiplexes every user onto few cores
	transport.IdleConnTimeout = 90 * time.Second
	var base http.RoundTripper = transport
	if resolver != nil {
		base = &discovery.Transport{Base: transport, Resolver: resolver}
	}
	c := &http.Client{Transport: &svcauth.Transport{Base: base, Token: serviceToken}}
	traced := connect.WithInterceptors(tracing.Interceptor(tp))
	edge := ytcaptionv1connect.NewEdgeServiceClient(c, baseURL, traced)
	return Clients{
		Jobs:    newJobs(ytcaptionv1connect.NewJobServiceClient(c, baseURL, traced), edge),
		Batches: ytcaptionv1connect.NewBatchServiceClient(c, baseURL, traced),
		Auth:    ytcaptionv1connect.NewAuthServiceClient(c, baseURL, traced),
		Admin:   ytcaptionv1connect.NewAdminServiceClient(c, baseURL, traced),
		Edge:    edge,
		Shares:  ytcaptionv1connect.NewShareServiceClient(c, baseURL, traced),
		HTTP:    c,
	}
}
