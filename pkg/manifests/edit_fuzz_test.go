package manifests

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	k8syaml "sigs.k8s.io/yaml"
)

// fuzzDocuments are seed documents with the layouts Edit has to keep:
// comments everywhere, block and quoted scalars, flow collections, empty
// values, both sequence styles, 4-space indentation, no final newline.
var fuzzDocuments = []string{
	`# head
a: 1 # line
b:
  c: "two"   # quoted
  d: 'three'
  # foot of d
e:
- x
- {y: 1, z: [1, 2]}
-   - nested
    - list
f: [] # empty
g: {}
h:
i: ~
# tail
`,
	`spec:
    text: |
        line one
        # not a comment

    keep: |+
        kept

    folded: >-
        a
        b
    list:
        - name: a
          value: "1"
        - name: b
    quoted: "multi
        line # still text"
    single: 'it''s
        # also text'
    after: end`,
	`metadata:
  labels:
    app: x
  annotations: {a: b, c: d}
items:
  - one
  -
    two
  - - three
    - four
  - k: v
    # between
    l: w

  # before last
  - last
`,
	"a: b\r\nc:\r\n  d: e\r\n",
	`key: value
list:
- a: 1
  b: 2
- a: 3
  b: 4
empty_map: {}
plain: multi
  line plain
`,
	`key: # comment between key and value
  value
tagged: !!str 10
indicator: |2
    two more spaces
  base
items:
- |
  block item
- >-
  folded item
-
- - a
  - b
- {flow: item,
   on: two lines}
- [x,
   y]
spaced:     value     # far comment
       # deep comment after
last:
  - a
    # deep foot
# root foot
`,
	`---
apiVersion: v1
kind: ConfigMap
metadata:
  name: x  
data:
  # head of a
  a: "1"

  b: 'two'


  c: |-
    three
      indented
  d: null
  e: ~
  f:
...
`,
	`spec:
  http:
  # first rule
  - name: a
    route:
    - destination: {host: x}
  - name: b # second
    timeout: 1s

  # third rule
  - name: c
    route:
    - destination:
        host: y
  ports:
  - name: http
    port: 80
  - 443
`,
	`? complex
: value
"quoted key": 1
'single': 2
"true": 3
yes: 4
1: 5
1.5: 6
`,
}

// fuzzScalars are values that tempt an encoder into writing another type,
// breaking a line, or opening a comment.
var fuzzScalars = []interface{}{
	"true", "10", "1.0", "null", "", "yes", "on", "~", "a: b", "# x", "- x", "x #y",
	`{"weight":10,"stable":"v1"}`, "multi\nline", "trailing\n", "kept\n\n", "\n", " lead",
	"trail ", "0777", "1:20", "2026-03-01", "'q'", `"dq"`, "tab\tx", "ünïcode", "[a]", "*a", "&a", "!t",
	"|", ">", "-", "?", "--- x", strings.Repeat("long ", 40), "\"", "'",
	int64(0), int64(-5), int64(90), 0.5, 1e21, true, false, nil,
}

// fuzzFindings are inputs FuzzEdit failed on once, with what went wrong.
var fuzzFindings = []struct {
	document string
	seed     int64
	found    string
}{
	{"0:\n1:\n- {0,2}", 79, "an empty null in a flow mapping came out as ''"},
	{"0:\n    Y: 000000000000000000000000000000\n    0: |\n     0", 1, "the newline added at the end went into the block"},
	{"    Y: 00000000000000000\n    0: 0\n       ", 2, "a line of spaces went into a new block scalar"},
	{"0000:\n    0000: 0000000000000000000000000000000000000000000\n    0001: 0000000000000000\n    000002: 0000000000000000000000\n00000001:\n     ", 2,
		"a line of spaces went into a new block scalar, after an insertion"},
	{"\r0: ", 1, "a lone CR counts as a line break in YAML"},
	{"? 0", -28, "a value node after the last line"},
	{"? 7\n0:", 1, `"? " taken for "- " when deleting a first key`},
	{"? 0\n1: \n2: \n07: \n8:", 2, `the key column taken from "? key"`},
	{"0000:\n    x000: 0000000000000000000000000000000000000000000\n    0000: 0000000000000000\n    000001: 0000000000000000000000\n    000A:\n        - 0000: 0\n          00001: 000\n        - 0000: 0\n    000A00: \"00000\n    #\"\n    Y:\n    02:", -62,
		"a line of a quoted string taken for a comment above a deleted key"},
	{"0:\n    x000: 0000000000000000\n    k000: |+#0000000\n    f00000: 00\n\n    0:\n    1:\n1:", 46, `a deletion handed blank lines to a "|+" block`},
	{"0: 00\nY: !0\n-  - {0,1}\n- 0:\n1:\n-", -71, "a tag put the sequence node off its dashes"},
	{"000: 000000\n000001: 00000000\n002: 00000000\n00007:\n- 0000000000\n\n 0\n   ", -59, "a plain scalar over two lines came out as a block that took a line of spaces"},
	{"A:\n    x: |\n        0\n        #\n    k: |1         \n    b: 0\n                \n    c:\n        - 0: \n          1:\n        - 0: \n    Y:\n    z: 000000000\n    0:", -32,
		"a deletion handed a line of spaces to the block before it"},
	{"1:\n 0:\n 2: |\n  0\n   \n0:", 21, "spaces past a block's indentation are its text, not a blank line"},
	{"0: \n1: !", -78, `a lone "!" is null to yaml.v3 and "" to sigs.k8s.io/yaml: rewritten as it was, it changed`},
}

var fuzzKeys = []string{"a", "name", "weight", "subset", "true", "1", "yes", "", "x y", "k:v", "#c", "-", "null", "ünï", "canary.example.com/state", "z"}

func FuzzEdit(f *testing.F) {
	for _, doc := range fuzzSeedDocuments(f) {
		for seed := int64(1); seed <= 3; seed++ {
			f.Add(doc, seed)
		}
	}
	for _, c := range fuzzFindings {
		f.Add([]byte(c.document), c.seed)
	}
	f.Fuzz(func(t *testing.T, document []byte, seed int64) {
		checkRandomEdit(t, document, seed)
	})
}

// TestEditRandom runs many mutations of every seed document on every test
// run; FuzzEdit explores further with -fuzz.
func TestEditRandom(t *testing.T) {
	for i, doc := range fuzzSeedDocuments(t) {
		for seed := int64(0); seed < 60; seed++ {
			t.Run(fmt.Sprintf("doc%d/seed%d", i, seed), func(t *testing.T) {
				checkRandomEdit(t, doc, seed)
			})
		}
	}
}

// fuzzSeedDocuments returns fuzzDocuments and every golden case's in.yaml.
func fuzzSeedDocuments(t testing.TB) [][]byte {
	var docs [][]byte
	for _, doc := range fuzzDocuments {
		docs = append(docs, []byte(doc))
	}
	paths, err := filepath.Glob(filepath.Join(editCases, "*", "in.yaml"))
	require.NoError(t, err)
	for _, path := range paths {
		docs = append(docs, goldenBytes(t, path))
	}
	return docs
}

// checkRandomEdit mutates the object document holds and checks that Edit
// writes exactly that object, and that a second Edit changes nothing.
func checkRandomEdit(t *testing.T, document []byte, seed int64) {
	strictEdit(t)
	if !editable(document) {
		_, _ = Edit(document, map[string]interface{}{"a": "b"}) // must not panic
		t.Skip("not a document Edit takes")
	}
	var desired map[string]interface{}
	require.NoError(t, k8syaml.Unmarshal(document, &desired))
	if desired == nil {
		desired = map[string]interface{}{}
	}
	r := rand.New(rand.NewSource(seed))
	for n := 1 + r.Intn(4); n > 0; n-- {
		mutate(r, desired)
	}
	out, err := Edit(document, desired)
	require.NoError(t, err, "document:\n%s\ndesired: %#v\nunchecked output:\n%s", document, desired, uncheckedEdit(document, desired))
	assertHolds(t, out, desired)
	again, err := Edit(out, desired)
	require.NoError(t, err)
	require.Equal(t, string(out), string(again), "a second Edit changed the output")

	// The fallback, rewriting the whole root mapping, must hold too.
	root, err := parseRoot(document)
	require.NoError(t, err)
	want, err := normalizeObject(desired)
	require.NoError(t, err)
	_, err = rewrite(document, root, want, false)
	require.NoError(t, err, "rewriting the whole root of:\n%s", document)
}

// editable reports whether Edit must succeed on document: one YAML mapping
// that Kubernetes tools read, without what Edit refuses.
func editable(document []byte) bool {
	root, err := parseRoot(document)
	if err != nil {
		return false
	}
	if _, err := objectOf(document); err != nil || checkLineBreaks(document) != nil {
		return false
	}
	return checkSupported(root) == nil
}

// slot is a place in an object: its value and how to replace it.
type slot struct {
	value interface{}
	set   func(interface{})
}

// slotsOf lists v and every value under it, in a stable order.
func slotsOf(v interface{}, set func(interface{}), out []slot) []slot {
	out = append(out, slot{value: v, set: set})
	switch t := v.(type) {
	case map[string]interface{}:
		for _, k := range sortedKeys(t) {
			out = slotsOf(t[k], func(x interface{}) { t[k] = x }, out)
		}
	case []interface{}:
		for i := range t {
			out = slotsOf(t[i], func(x interface{}) { t[i] = x }, out)
		}
	}
	return out
}

// mutate makes one random change somewhere in obj: a scalar changed, a key
// added or removed, a list grown or shrunk, a value of another type.
func mutate(r *rand.Rand, obj map[string]interface{}) {
	slots := slotsOf(obj, nil, nil)
	s := slots[r.Intn(len(slots))]
	switch t := s.value.(type) {
	case map[string]interface{}:
		keys := sortedKeys(t)
		switch op := r.Intn(3); {
		case op == 0 || len(keys) == 0:
			t[fuzzKeys[r.Intn(len(fuzzKeys))]] = randomValue(r, 2)
		case op == 1 || s.set == nil:
			delete(t, keys[r.Intn(len(keys))])
		default:
			s.set(randomValue(r, 2))
		}
	case []interface{}:
		switch op := r.Intn(5); {
		case op == 0 || len(t) == 0:
			s.set(append(t, grownItem(r, t)))
		case op == 1:
			i := r.Intn(len(t))
			s.set(append(t[:i:i], t[i+1:]...))
		case op == 2:
			i := r.Intn(len(t) + 1)
			s.set(append(append(t[:i:i], grownItem(r, t)), t[i:]...))
		case op == 3:
			i, j := r.Intn(len(t)), r.Intn(len(t))
			t[i], t[j] = t[j], t[i]
		default:
			s.set(randomValue(r, 2))
		}
	default:
		s.set(randomValue(r, 2))
	}
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// grownItem is a new list item: mostly a changed copy of an existing one,
// the way a canary adds a second route destination.
func grownItem(r *rand.Rand, list []interface{}) interface{} {
	if len(list) == 0 || r.Intn(3) == 0 {
		return randomValue(r, 2)
	}
	item := deepCopy(list[r.Intn(len(list))])
	if m, ok := item.(map[string]interface{}); ok {
		mutate(r, m)
		return m
	}
	return randomValue(r, 0)
}

func randomValue(r *rand.Rand, depth int) interface{} {
	switch n := r.Intn(10); {
	case depth > 0 && n == 0:
		m := map[string]interface{}{}
		for i := r.Intn(3); i >= 0; i-- {
			m[fuzzKeys[r.Intn(len(fuzzKeys))]] = randomValue(r, depth-1)
		}
		return m
	case depth > 0 && n == 1:
		var list []interface{}
		for i := r.Intn(3); i >= 0; i-- {
			list = append(list, randomValue(r, depth-1))
		}
		return list
	case n == 2:
		return map[string]interface{}{}
	}
	return fuzzScalars[r.Intn(len(fuzzScalars))]
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		c := make(map[string]interface{}, len(t))
		for k, x := range t {
			c[k] = deepCopy(x)
		}
		return c
	case []interface{}:
		c := make([]interface{}, len(t))
		for i, x := range t {
			c[i] = deepCopy(x)
		}
		return c
	}
	return v
}

// uncheckedEdit is Edit's precise output before its final check, to show
// what went wrong when that check fails.
func uncheckedEdit(document []byte, desired map[string]interface{}) string {
	root, err := parseRoot(document)
	if err != nil {
		return err.Error()
	}
	want, err := normalizeObject(desired)
	if err != nil {
		return err.Error()
	}
	e := newEditor(document, root)
	old, err := objectOf(e.src)
	if err != nil {
		return err.Error()
	}
	if !e.mapping(root, old, want, e.documentEnd(root)) {
		e.splices = nil
		e.replaceRoot(root, old, want)
	}
	out, err := e.apply()
	if err != nil {
		return err.Error()
	}
	return string(out)
}
