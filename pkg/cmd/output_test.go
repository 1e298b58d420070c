package cmd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// healthyPrometheus is a fake Prometheus, scraping every second, whose
// every analysis query of shop/reviews finds v1 and v2 alike and healthy.
func healthyPrometheus(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/targets":
			fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"istio-sidecars","instance":"10.244.0.5:15020"},"scrapePool":"istio-sidecars","scrapeInterval":"1s","health":"up"}],"droppedTargets":[]}}`)
		case "/api/v1/query":
			_ = r.ParseForm()
			q := r.Form.Get("query")
			value := "1"
			switch {
			case strings.HasPrefix(q, "count by (job, instance)"):
				value = "4"
			case strings.HasPrefix(q, "count by"):
				fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[`+
					`{"metric":{"destination_version":"v1","destination_workload":"reviews-v1"},"value":[1700000000,"3"]},`+
					`{"metric":{"destination_version":"v2","destination_workload":"reviews-v2"},"value":[1700000000,"3"]}]}}`)
				return
			case strings.HasPrefix(q, "sum(increase"):
				value = "600"
			case strings.HasPrefix(q, "histogram_quantile"):
				value = "20"
			}
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,%q]}]}}`, value)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Every command that takes -o prints through kubectl's printers: -o json
// and -o yaml hold the same document, and any other format is refused with
// the same message.
func TestOutputIsTheSameEverywhere(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	prom := healthyPrometheus(t)
	for _, tc := range []struct {
		args      []string
		otherwise string
		field     string // a top-level field of the document
		table     bool
	}{
		{[]string{"status"}, "a table", "items", true},
		{[]string{"status", "reviews"}, "a table", "weight", true},
		{[]string{"check", "reviews"}, "a table", "findings", true},
		{[]string{"analyze", "reviews", "--window", "10s", "--prometheus-url", prom}, "a table", "decision", true},
		{[]string{"version"}, "one line", "goVersion", false},
		{[]string{"weight", "reviews", "30", "--dry-run"}, "a summary", "items", false},
	} {
		t.Run(strings.Join(tc.args[:min(2, len(tc.args))], " "), func(t *testing.T) {
			jsonOut, _, err := f.run(append(tc.args, "-o", "json")...)
			require.NoError(t, err)
			var fromJSON map[string]any
			require.NoError(t, json.Unmarshal([]byte(jsonOut), &fromJSON), "-o json printed:\n%s", jsonOut)
			assert.Contains(t, fromJSON, tc.field)
			assert.True(t, strings.HasPrefix(jsonOut, "{\n    \""), "kubectl's JSON printer indents by 4 spaces:\n%s", jsonOut)

			yamlOut, _, err := f.run(append(tc.args, "-o", "yaml")...)
			require.NoError(t, err)
			var fromYAML map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(yamlOut), &fromYAML), "-o yaml printed:\n%s", yamlOut)
			assert.Equal(t, fromJSON, fromYAML, "-o json and -o yaml differ")

			_, _, err = f.run(append(tc.args, "-o", "table")...)
			assert.ErrorContains(t, err, `--output "table" is not supported; use one of custom-columns, custom-columns-file, go-template, `)
			assert.ErrorContains(t, err, ", or leave it out for "+tc.otherwise)
			_, _, err = f.run(append(tc.args, "-o", "wide")...)
			if tc.table {
				assert.NoError(t, err, "a table has -o wide")
			} else {
				assert.ErrorContains(t, err, `--output "wide" is not supported`)
			}
		})
	}
	assert.Equal(t, []string{"create destinationrules", "create virtualservices"}, f.writes(), "only start wrote")
}

// A change's -o prints the objects as they must become through the same
// printers: -o name names them as kubectl apply -o name does, jsonpath and
// custom columns read them.
func TestChangeOutputFormats(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	out, _, err := f.run("weight", "reviews", "30", "--dry-run", "-o", "name")
	require.NoError(t, err)
	assert.Equal(t, "virtualservice.networking.istio.io/reviews\n", out)
	out, _, err = f.run("weight", "reviews", "30", "--dry-run", "-o", "jsonpath={.items[0].spec.http[0].route[*].weight}")
	require.NoError(t, err)
	assert.Equal(t, "70 30", out)
	out, _, err = f.run("weight", "reviews", "30", "--dry-run", "-o", "custom-columns=KIND:.kind,NAME:.metadata.name")
	require.NoError(t, err)
	assert.Regexp(t, `^KIND\s+NAME\nVirtualService\s+reviews\n$`, out)
	assert.Equal(t, []string{"create destinationrules", "create virtualservices"}, f.writes(), "dry runs write nothing")

	_, _, err = f.run("weight", "reviews", "30", "--no-headers")
	assert.ErrorContains(t, err, "unknown flag: --no-headers", "a change prints no table")
}
