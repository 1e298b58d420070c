package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rawSpec must write what encoding/json writes: recorded states are
// compared byte for byte, also with states an earlier version recorded.
func TestRawSpecIsEncodingJSON(t *testing.T) {
	specs := []map[string]interface{}{
		nil, // an object without a spec
		{},
		{"nilList": []interface{}(nil), "nilMap": map[string]interface{}(nil), "bad": "\xff\xfe"},
		{"hosts": []interface{}{"reviews", "reviews.shop.svc.cluster.local"}, "exportTo": []interface{}{}},
		{"http": []interface{}{map[string]interface{}{
			"name":    "a<b>&c \"quoted\" \\ tab\t é 日本 \u2028",
			"match":   []interface{}{map[string]interface{}{"headers": map[string]interface{}{"x-b": map[string]interface{}{"regex": "^(a|b)$"}}}},
			"timeout": "5s", "retries": map[string]interface{}{"attempts": int64(3), "perTryTimeout": nil},
			"weight": float64(12.5), "big": float64(1e21), "int": int64(-7), "on": true, "off": false,
			"route": []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v1"}, "weight": int64(100)}},
		}}},
		bigSnapshot(t).VirtualServices[0].Object["spec"].(map[string]interface{}),
	}
	for _, spec := range specs {
		want, err := json.Marshal(spec)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(rawSpec(spec)))
	}
	// And what unstructured decoding gives, invalid UTF-8 included.
	obj := &unstructured.Unstructured{}
	require.NoError(t, obj.UnmarshalJSON([]byte(`{"apiVersion":"v1","kind":"X","spec":{"a":"\ud800x","n":1.0,"m":2.5e-7,"k":[null,{"z":1,"a":2}]}}`)))
	spec := obj.Object["spec"].(map[string]interface{})
	want, err := json.Marshal(spec)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(rawSpec(spec)))
}

// canonical's bytes are hashed into recorded states: its fast path for
// plain strings must write what strconv.Quote writes.
func TestSpecHashIsStable(t *testing.T) {
	spec := map[string]interface{}{"hosts": []interface{}{"reviews", "a\"b", "é"}, "n": int64(3), "f": 1.5, "t": true, "x": nil}
	var w canonicalWriter
	w.write(spec)
	assert.Equal(t, `{"f":1.5,"hosts":["reviews","a\"b","é",],"n":3,"t":true,"x":null,}`, string(w.buf))
	sum := sha256.Sum256(w.buf)
	assert.Equal(t, hex.EncodeToString(sum[:8]), specHash(spec))

	// Fed to the hash in pieces, a spec of hundreds of routes hashes as its
	// whole canonical form does.
	big := bigSnapshot(t).VirtualServices[0].Object["spec"].(map[string]interface{})
	w = canonicalWriter{}
	w.write(big)
	require.Greater(t, len(w.buf), 64<<10)
	sum = sha256.Sum256(w.buf)
	assert.Equal(t, hex.EncodeToString(sum[:8]), specHash(big))
}

// Match fingerprints are recorded in states: they must stay the hash of
// encoding/json's bytes.
func TestMatchFingerprintIsOfEncodingJSON(t *testing.T) {
	routes := []map[string]interface{}{
		{"match": []interface{}{map[string]interface{}{"uri": map[string]interface{}{"prefix": "/api"}, "headers": map[string]interface{}{"x-b": map[string]interface{}{"regex": "^(a|b)$"}}}}},
		{"match": []interface{}{map[string]interface{}{"port": int64(9081)}, map[string]interface{}{"sourceLabels": map[string]interface{}{"app": "<web>"}}}},
		{"match": nil},
		{"match": []interface{}{}},
	}
	for _, route := range routes {
		data, err := json.Marshal(route["match"])
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		assert.Equal(t, hex.EncodeToString(sum[:6]), matchFingerprint(route), string(data))
	}
	assert.Empty(t, matchFingerprint(map[string]interface{}{"name": "no match"}))
}
