package rest

import (
	"encoding/json"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/internal/jobjson"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage
		}
	}
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	return doc
}

// TestOpenAPIMatchesTheRoutes fails when a route is served that the document
// does not describe, or described that is not served.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	app := New(slog.New(slog.DiscardHandler), Config{}, Deps{Registry: prometheus.NewRegistry(), Core: coreclient.New("http://core.invalid", "token", nil, nil)})
	param := regexp.MustCompile(`:([a-z_]+)`)
	var served []string
	for _, r := range app.GetRoutes(true) {
		switch r.Method {
		case "GET", "POST", "DELETE", "PUT", "PATCH":
			served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
		}
	}
	var documented []string
	for path, ops := range loadOpenAPI(t).Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	require.Equal(t, slices.Compact(served), documented)
}

// TestOpenAPIJobSchemaMatchesTheJSON fails when the job JSON (or another
// reply's) gains or loses a field the document does not know about.
func TestOpenAPIJobSchemaMatchesTheJSON(t *testing.T) {
	for schema, v := range map[string]any{"Job": jobjson.Job{}, "CreateJob": createBody{}, "Media": jobjson.Media{},
		"CaptionListing": captionListing{}, "CaptionTrack": captionTrack{}, "Translation": translation{},
		"Share": share{}, "CreatedShare": createdShare{}, "SharedJob": sharedJob{}} {
		var fields []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields = append(fields, name)
		}
		var documented []string
		for name := range loadOpenAPI(t).Components.Schemas[schema].Properties {
			documented = append(documented, name)
		}
		slices.Sort(fields)
		slices.Sort(documented)
		require.Equal(t, fields, documented, schema)
	}
}
