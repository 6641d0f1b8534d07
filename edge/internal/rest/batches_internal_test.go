package rest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenAPIBatchSchemasMatchTheJSON: the batch JSON and the request body
// have exactly the fields the document names.
func TestOpenAPIBatchSchemasMatchTheJSON(t *testing.T) {
	for schema, v := range map[string]any{"Batch": batchJSON{}, "CreateBatch": batchBody{}, "BatchCounts": batchCounts{}} {
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
