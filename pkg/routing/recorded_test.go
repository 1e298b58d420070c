package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Spec hashes are recorded in the states of running canaries: the form they
// hash must stay byte for byte what it is (testdata/routing/recorded-state
// checks whole specs an earlier release hashed).
func TestSpecHashFormIsPinned(t *testing.T) {
	spec := map[string]interface{}{
		"hosts": []interface{}{"reviews", "a\"b", "é", "<&>", "\x01"},
		"n":     int64(3), "f": 1.5, "big": float64(1e21), "t": true, "x": nil,
		"empty": map[string]interface{}{}, "none": []interface{}{},
	}
	form := `{"big":1e+21,"empty":{},"f":1.5,"hosts":["reviews","a\"b","é","<&>","\x01",],"n":3,"none":[],"t":true,"x":null,}`
	assert.Equal(t, form, string(appendSpecHashForm(nil, spec)))
	sum := sha256.Sum256([]byte(form))
	assert.Equal(t, hex.EncodeToString(sum[:8]), specHash(spec))
	assert.Equal(t, "44136fa355b3678a", specHash(nil), "the hash of a missing spec")
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
	assert.Equal(t, "5366b9cc547a", matchFingerprint(map[string]interface{}{"match": []interface{}{map[string]interface{}{"uri": map[string]interface{}{"prefix": "/slow"}}}}),
		"the fingerprint testdata/routing/bookinfo-adopted records")
	assert.Empty(t, matchFingerprint(map[string]interface{}{"name": "no match"}))
}
