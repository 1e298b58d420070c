package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"
)

// rewriteWholeOnFailure lets Edit re-encode the whole root mapping when the
// precise edit would not hold desired. Tests turn it off so that such a miss
// fails them instead of hiding.
var rewriteWholeOnFailure = true

// Edit returns the text of one YAML document changed so that it holds desired,
// rewriting only what differs: the mapping entries whose values change (or
// the sequence items, when they are not mappings to edit inside), the keys
// added (after the last entry of their mapping) and removed, the items
// appended to or removed from the end of a list. Comments, key order,
// quoting, indentation, sequence style, blank lines and flow style of
// everything else stay byte for byte; a rewritten node keeps the comments and
// the style of what it keeps from the old one.
//
// document is one YAML document whose root is a mapping, without "---"
// separator lines; desired is a Kubernetes unstructured object. When the
// document already holds desired, Edit returns document itself. A document
// that needs a change and uses anchors, aliases, merge keys or line breaks
// other than LF and CRLF is refused.
func Edit(document []byte, desired map[string]interface{}) ([]byte, error) {
	root, err := parseRoot(document)
	if err != nil {
		return nil, err
	}
	old, err := objectOf(document)
	if err != nil {
		return nil, err
	}
	want, err := normalizeObject(desired)
	if err != nil {
		return nil, fmt.Errorf("desired object: %w", err)
	}
	if reflect.DeepEqual(old, want) {
		return document, nil
	}
	if err := checkLineBreaks(document); err != nil {
		return nil, err
	}
	if err := checkSupported(root); err != nil {
		return nil, err
	}
	out, err := rewrite(document, root, want, true)
	if err != nil && rewriteWholeOnFailure {
		out, err = rewrite(document, root, want, false)
	}
	return out, err
}

// parseRoot returns the root mapping node of the only document in document.
func parseRoot(document []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(document))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("document is empty, want a YAML mapping")
		}
		return nil, fmt.Errorf("document does not parse as YAML: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("document holds more than one YAML document")
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("document is not a YAML mapping at its root")
	}
	return doc.Content[0], nil
}

// objectOf returns the object document holds, read the way Kubernetes
// tools read it (sigs.k8s.io/yaml) and normalized.
func objectOf(document []byte) (map[string]interface{}, error) {
	var obj map[string]interface{}
	if err := k8syaml.Unmarshal(document, &obj); err != nil {
		return nil, fmt.Errorf("document does not parse as a Kubernetes object: %w", err)
	}
	return normalizeObject(obj)
}

// normalizeObject passes obj through JSON so that values compare with
// reflect.DeepEqual: numbers become int64 when they are whole, else float64.
func normalizeObject(obj map[string]interface{}) (map[string]interface{}, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]interface{}
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]interface{}{}
	}
	numbersToGo(out)
	return out, nil
}

// numbersToGo replaces the json.Numbers under v and returns v.
func numbersToGo(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = numbersToGo(x)
		}
	case []interface{}:
		for i, x := range t {
			t[i] = numbersToGo(x)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64() // json.Marshal wrote it from a float64
		return f
	}
	return v
}

// checkLineBreaks refuses line breaks other than "\n" and "\r\n": YAML
// counts a lone "\r", NEL, LS and PS as line breaks too, and node positions
// would then not match the lines of the text.
func checkLineBreaks(document []byte) error {
	text := string(document)
	if strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\r") || strings.ContainsAny(text, "\u0085\u2028\u2029") {
		return errors.New("document has line breaks other than LF and CRLF (a lone CR, NEL, LS or PS); convert them to LF")
	}
	return nil
}

// checkSupported refuses what a node-by-node edit cannot keep right: anchors
// and aliases (one node read in two places), merge keys, keys that are not
// scalars, and duplicate keys.
func checkSupported(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fmt.Errorf("line %d: YAML anchors and aliases are not supported", n.Line)
	}
	if n.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			if key.ShortTag() == yaml.MergeTag {
				return fmt.Errorf("line %d: YAML merge keys (<<) are not supported", key.Line)
			}
			k, err := keyString(key)
			if err != nil {
				return err
			}
			if seen[k] {
				return fmt.Errorf("line %d: duplicate key %q", key.Line, k)
			}
			seen[k] = true
		}
	}
	for _, child := range n.Content {
		if err := checkSupported(child); err != nil {
			return err
		}
	}
	return nil
}

// keyOf returns the object key a mapping key node stands for;
// checkSupported has vetted every key already.
func keyOf(n *yaml.Node) string {
	k, err := keyString(n)
	if err != nil {
		return n.Value
	}
	return k
}

// keyString returns the object key a mapping key node stands for. Words go
// straight through; anything else ("yes", 1.0, null) is read the way
// sigs.k8s.io/yaml reads it, which is how the old object got its keys.
func keyString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: mapping keys that are not scalars are not supported", n.Line)
	}
	if isWord(n) {
		return n.Value, nil
	}
	key := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Style: n.Style, Value: n.Value}
	null := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	text, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{key, null}})
	var m map[string]interface{}
	if err == nil {
		err = k8syaml.Unmarshal(text, &m)
	}
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("line %d: key %q cannot be an object key", n.Line, n.Value)
	}
	for k := range m {
		return k, nil
	}
	return "", nil
}

// isWord reports whether a key reads as the same string in YAML 1.1 and 1.2.
func isWord(n *yaml.Node) bool {
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		return n.ShortTag() == "!!str"
	}
	if n.Style != 0 || n.Tag != "!!str" || n.Value == "" {
		return false
	}
	switch strings.ToLower(n.Value) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return false
	}
	for i, c := range n.Value {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		other := c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)
		if !letter && (i == 0 || !other) {
			return false
		}
	}
	return true
}

// rewrite edits document into want: precisely, or by re-encoding the whole
// root mapping. It checks that the result reads back as want.
func rewrite(document []byte, root *yaml.Node, want map[string]interface{}, precise bool) ([]byte, error) {
	e := newEditor(document, root)
	// The editor works on text that ends in a newline, which a block scalar
	// at the very end reads as one more line break: take its object.
	old, err := objectOf(e.src)
	if err != nil {
		return nil, err
	}
	if !precise || !e.mapping(root, old, want, e.documentEnd(root)) {
		e.splices = nil
		if !e.replaceRoot(root, old, want) {
			return nil, errors.New("cannot encode the desired object as YAML")
		}
	}
	out, err := e.apply()
	if err != nil {
		return nil, err
	}
	if trimmed, ok := bytes.CutSuffix(out, []byte("\n")); e.appended && ok && holds(trimmed, want) {
		return trimmed, nil
	}
	if !holds(out, want) {
		return nil, errors.New("edited document does not hold the desired object (a bug)")
	}
	return out, nil
}

// holds reports whether document reads as want.
func holds(document []byte, want map[string]interface{}) bool {
	got, err := objectOf(document)
	return err == nil && reflect.DeepEqual(got, want)
}

// editor collects splices of a document's text; lines are 0-based.
type editor struct {
	src      []byte
	starts   []int // where each line starts in src, then len(src)
	appended bool  // src got the final newline the document lacked
	crlf     bool  // lines end in "\r\n"
	// blockEnds holds the last lines of block scalars, true for those
	// with "+" chomping.
	blockEnds map[int]bool
	indent    int // spaces per nesting level
	seqStyle  yaml.SequenceIndentStyle
	splices   []splice
}

// splice replaces src[start:end] with text. When text ends in a block
// scalar, quoted is the same text with that scalar double-quoted, for when
// stray lines follow it (see strayLinesAfter); column is where the node
// written starts.
type splice struct {
	start, end int
	text       string
	quoted     string
	column     int
}

func newEditor(document []byte, root *yaml.Node) *editor {
	e := &editor{src: document, crlf: bytes.Contains(document, []byte("\r\n"))}
	if !bytes.HasSuffix(document, []byte("\n")) {
		e.src = append(append([]byte{}, document...), '\n')
		e.appended = true
	}
	e.starts = []int{0}
	for i, c := range e.src {
		if c == '\n' {
			e.starts = append(e.starts, i+1)
		}
	}
	e.indent, e.seqStyle = layoutOf(root)
	e.blockEnds = map[int]bool{}
	e.findBlockEnds(root, -1)
	return e
}

// findBlockEnds records where the block scalars under n end (see
// exposesLines).
func (e *editor) findBlockEnds(n *yaml.Node, owner int) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			e.blockEnds[e.blockScalarEnd(n, owner)] = e.keepsNewlines(n)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			e.findBlockEnds(n.Content[i+1], n.Content[i].Column-1)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			e.findBlockEnds(item, e.dashColumn(n))
		}
	}
}

// exposesLines reports whether deleting lines from to end would hand a
// block scalar that ends right before them lines it reads as its own: a
// comment or a line of spaces, or with "+" chomping a blank line.
func (e *editor) exposesLines(from, end int) bool {
	keep, ok := e.blockEnds[from-1]
	for l := end + 1; ok && l < e.lineCount() && e.blankOrComment(l); l++ {
		if keep || e.line(l) != "" {
			return true
		}
	}
	return false
}

// layoutOf derives the indentation width and sequence style the document
// uses from its first nested block mapping and first block sequence. The
// yaml encoder puts a sequence's dashes indent-2 columns past its key when
// compact, indent columns when wide: the nearer one to the document wins.
func layoutOf(root *yaml.Node) (int, yaml.SequenceIndentStyle) {
	indent, dashes := 0, -1
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i+1 < len(n.Content) && n.Kind == yaml.MappingNode; i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if value.Style&yaml.FlowStyle != 0 || value.Line <= key.Line {
				continue
			}
			if value.Kind == yaml.MappingNode && indent == 0 {
				indent = value.Column - key.Column
			}
			if value.Kind == yaml.SequenceNode && dashes < 0 {
				dashes = value.Column - key.Column
			}
		}
		for _, child := range n.Content {
			walk(child)
		}
	}
	walk(root)
	if indent < 2 || indent > 9 {
		indent = yaml.DefaultIndent
	}
	if dashes >= indent {
		return indent, yaml.WideSequenceStyle
	}
	return indent, yaml.CompactSequenceStyle
}

func (e *editor) lineCount() int { return len(e.starts) - 1 }

// line returns the text of line l without its newline.
func (e *editor) line(l int) string { return string(e.src[e.starts[l] : e.starts[l+1]-1]) }

// lineEnd is where the line break of line l starts.
func (e *editor) lineEnd(l int) int {
	end := e.starts[l+1] - 1
	if end > e.starts[l] && e.src[end-1] == '\r' {
		return end - 1
	}
	return end
}

// documentEnd is the line of the "..." or "---" marker that ends the
// document of root, or the number of lines.
func (e *editor) documentEnd(root *yaml.Node) int {
	for l := e.row(root) + 1; l < e.lineCount(); l++ {
		text := e.line(l)
		marker := strings.HasPrefix(text, "...") || strings.HasPrefix(text, "---")
		if marker && (len(text) == 3 || strings.ContainsRune(" \t\r", rune(text[3]))) {
			return l
		}
	}
	return e.lineCount()
}

// row is the line of node n, kept inside the text: a node yaml puts after
// the end (an empty value at the very end) is on the last line.
func (e *editor) row(n *yaml.Node) int {
	return min(max(n.Line-1, 0), e.lineCount()-1)
}

// lineOf returns the line that holds byte offset.
func (e *editor) lineOf(offset int) int { return sort.SearchInts(e.starts, offset+1) - 1 }

// offset is where node n starts in src.
func (e *editor) offset(n *yaml.Node) int {
	return e.starts[e.row(n)] + len(e.prefix(n))
}

// prefix is the text before node n on its line; yaml columns count runes.
func (e *editor) prefix(n *yaml.Node) string {
	text := e.line(e.row(n))
	runes := 0
	for i := range text {
		if runes == n.Column-1 {
			return text[:i]
		}
		runes++
	}
	return text
}

// startsLine reports whether only indentation and "- " come before n.
func (e *editor) startsLine(n *yaml.Node) bool {
	return strings.Trim(e.prefix(n), " \t-") == ""
}

// blankOrComment reports whether line l holds no YAML content.
func (e *editor) blankOrComment(l int) bool {
	text := strings.TrimLeft(e.line(l), " \t")
	return text == "" || text == "\r" || text[0] == '#'
}

// add records a splice of src[start:end] with the encoding of n, indented
// by column spaces; its first line too when first is set. The text of an
// insertion ends in a newline.
func (e *editor) add(start, end int, n *yaml.Node, column int, first bool) bool {
	text, err := e.encode(n)
	if err != nil {
		return false
	}
	s := splice{start: start, end: end, text: indentLines(text, column, first), column: column}
	if quoteLastBlockScalar(n) {
		if text, err = e.encode(n); err != nil {
			return false
		}
		s.quoted = indentLines(text, column, first)
	}
	if start == end {
		s.text += "\n"
		if s.quoted != "" {
			s.quoted += "\n"
		}
	}
	if e.crlf {
		s.text = strings.ReplaceAll(s.text, "\n", "\r\n")
		s.quoted = strings.ReplaceAll(s.quoted, "\n", "\r\n")
	}
	e.splices = append(e.splices, s)
	return true
}

// remove records a splice that deletes src[start:end].
func (e *editor) remove(start, end int) {
	e.splices = append(e.splices, splice{start: start, end: end})
}

// apply returns src with the splices made, ending in a newline. Insertions
// at the point where a replaced range starts go first, in the order they
// were recorded, which puts the edits of a nested mapping before those of
// its parent. A splice ending in a block scalar that stray lines follow in
// the result is made again with the scalar quoted.
func (e *editor) apply() ([]byte, error) {
	sort.SliceStable(e.splices, func(a, b int) bool {
		sa, sb := e.splices[a], e.splices[b]
		if sa.start != sb.start {
			return sa.start < sb.start
		}
		return sa.end == sa.start && sb.end != sb.start
	})
	out, ends, err := e.join()
	if err != nil {
		return nil, err
	}
	again := false
	for i, s := range e.splices {
		if s.quoted != "" && strayLinesAfter(out, ends[i], s.column) {
			e.splices[i].text, again = s.quoted, true
		}
	}
	if again {
		out, _, err = e.join()
	}
	return out, err
}

// join makes the sorted splices and returns the result with where the text
// of each splice ends in it.
func (e *editor) join() ([]byte, []int, error) {
	var out bytes.Buffer
	ends := make([]int, len(e.splices))
	at := 0
	for i, s := range e.splices {
		if s.start < at {
			return nil, nil, errors.New("edits overlap (a bug)")
		}
		out.Write(e.src[at:s.start])
		out.WriteString(s.text)
		ends[i], at = out.Len(), s.end
	}
	out.Write(e.src[at:])
	return out.Bytes(), ends, nil
}

// strayLinesAfter reports whether, in text, the lines after offset (from
// the next line start on) hold a comment line or a line of spaces deeper
// than column before the next line with content: a block scalar ending at
// offset, in a node at column, would read them as its own.
func strayLinesAfter(text []byte, offset, column int) bool {
	if offset > 0 && text[offset-1] != '\n' {
		next := bytes.IndexByte(text[offset:], '\n')
		if next < 0 {
			return false
		}
		offset += next + 1
	}
	for _, line := range strings.Split(string(text[offset:]), "\n") {
		body := strings.TrimLeft(line, " ")
		switch {
		case body != "" && body != "\r" && body[0] != '#':
			return false
		case len(line) > 0 && len(line)-len(body) > column:
			return true
		}
	}
	return false
}

// spanEnd returns the last line of an entry or item whose text reaches at
// least line low and stops before line boundary: the last line before
// boundary with content, so that comments between siblings stay outside.
func (e *editor) spanEnd(low, boundary int) int {
	for l := boundary - 1; l > low; l-- {
		if !e.blankOrComment(l) {
			return l
		}
	}
	return low
}

// entryLow is the last line that certainly belongs to a mapping entry.
func (e *editor) entryLow(key, value *yaml.Node) int {
	return max(e.row(key), e.lastLine(value, key.Column-1))
}

// entryBoundary is the line where the entry after entry i starts, or the
// mapping's own boundary for its last entry.
func (e *editor) entryBoundary(node *yaml.Node, i, boundary int) int {
	if i+2 < len(node.Content) {
		return e.row(node.Content[i+2])
	}
	return boundary
}

// lastLine is the last line known to hold text of n. owner is the
// indentation of the block collection holding n, which bounds block scalars.
func (e *editor) lastLine(n *yaml.Node, owner int) int {
	last := e.row(n)
	switch n.Kind {
	case yaml.ScalarNode:
		switch {
		case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
			return e.blockScalarEnd(n, owner)
		case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
			return e.quotedEnd(n)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			last = max(last, e.entryLow(n.Content[i], n.Content[i+1]))
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			last = max(last, e.lastLine(item, e.dashColumn(n)))
		}
	}
	return last
}

// blockScalarEnd returns the last line of a literal or folded scalar: its
// content lines are indented deeper than owner (or as its header says), and
// with "+" chomping its trailing blank lines belong to it too.
func (e *editor) blockScalarEnd(n *yaml.Node, owner int) int {
	first := e.row(n)
	explicit, keep := blockHeader(e.line(first)[len(e.prefix(n)):])
	indent := -1
	if explicit > 0 {
		indent = max(owner, 0) + explicit
	}
	last := first
	for l := first + 1; l < e.lineCount(); l++ {
		text := e.line(l)
		body := strings.TrimLeft(text, " ")
		if strings.TrimSpace(text) == "" {
			// Spaces past the indentation are text; with "+" blank lines count.
			if keep || indent >= 0 && len(text)-len(body) > indent {
				last = l
			}
			continue
		}
		spaces := len(text) - len(body)
		if indent < 0 && spaces > owner {
			indent = spaces
		}
		if indent < 0 || spaces < indent {
			break
		}
		last = l
	}
	return last
}

// keepsNewlines reports whether block scalar n has "+" chomping.
func (e *editor) keepsNewlines(n *yaml.Node) bool {
	_, keep := blockHeader(e.line(e.row(n))[len(e.prefix(n)):])
	return keep
}

// blockHeader reads the indentation indicator and "+" chomping of a block
// scalar header such as "|2+" (a tag may come before it).
func blockHeader(header string) (explicit int, keep bool) {
	i := strings.IndexAny(header, "|>")
	if i < 0 {
		return 0, false
	}
	for _, c := range header[i+1:] {
		switch {
		case c >= '1' && c <= '9':
			explicit = int(c - '0')
		case c == '+':
			keep = true
		case c != '-':
			return explicit, keep
		}
	}
	return explicit, keep
}

// quotedEnd returns the line of the closing quote of a quoted scalar.
func (e *editor) quotedEnd(n *yaml.Node) int {
	quote := byte('"')
	if n.Style&yaml.SingleQuotedStyle != 0 {
		quote = '\''
	}
	start := e.offset(n)
	open := bytes.IndexByte(e.src[start:], quote)
	if open < 0 {
		return e.row(n)
	}
	for i := start + open + 1; i < len(e.src); i++ {
		switch {
		case quote == '"' && e.src[i] == '\\':
			i++
		case quote == '\'' && e.src[i] == '\'' && i+1 < len(e.src) && e.src[i+1] == '\'':
			i++
		case e.src[i] == quote:
			return e.lineOf(i)
		}
	}
	return e.row(n)
}

// mapping records the splices that turn the block mapping node into want.
// It reports false when only rewriting node as a whole can do that: a flow
// mapping, one that ends up empty, or an odd layout.
func (e *editor) mapping(node *yaml.Node, old, want map[string]interface{}, boundary int) bool {
	if node.Style&yaml.FlowStyle != 0 || len(node.Content) == 0 || len(want) == 0 {
		return false
	}
	first := e.leadingDeleted(node, want)
	if first > 0 && !e.deleteLeading(node, first) {
		return false
	}
	kept := -1
	for i := 2 * first; i+1 < len(node.Content); i += 2 {
		k := keyOf(node.Content[i])
		w, ok := want[k]
		switch {
		case !ok:
			if !e.deleteEntry(node, i, boundary) {
				return false
			}
		case reflect.DeepEqual(old[k], w):
			kept = i
		default:
			kept = i
			if !e.changeEntry(node, i, old[k], w, boundary) {
				return false
			}
		}
	}
	added := addedKeys(node, want)
	if len(added) == 0 {
		return true
	}
	return kept >= 0 && e.insertEntries(node, kept, added, want, boundary)
}

// leadingDeleted counts the entries want drops from the start of a mapping
// whose first key shares its line with a "- ".
func (e *editor) leadingDeleted(node *yaml.Node, want map[string]interface{}) int {
	if first := node.Content[0]; strings.TrimSpace(e.prefix(first)) == "" || !e.startsLine(first) {
		return 0
	}
	n := 0
	for i := 0; i+1 < len(node.Content); i += 2 {
		if _, ok := want[keyOf(node.Content[i])]; ok {
			break
		}
		n++
	}
	return n
}

// addedKeys returns the keys of want that node lacks, sorted.
func addedKeys(node *yaml.Node, want map[string]interface{}) []string {
	have := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		have[keyOf(node.Content[i])] = true
	}
	var added []string
	for k := range want {
		if !have[k] {
			added = append(added, k)
		}
	}
	sort.Strings(added)
	return added
}

// changeEntry edits the value of entry i into w: inside it when it is a
// collection that can stay, else by rewriting the entry.
func (e *editor) changeEntry(node *yaml.Node, i int, oldv, w interface{}, boundary int) bool {
	key, value := node.Content[i], node.Content[i+1]
	end := e.entryBoundary(node, i, boundary)
	mark := len(e.splices)
	if e.descend(value, oldv, w, end) {
		return true
	}
	e.splices = e.splices[:mark]
	return e.replaceEntry(key, value, oldv, w, end)
}

// descend edits inside a collection node that stays a collection of its kind.
func (e *editor) descend(n *yaml.Node, oldv, w interface{}, boundary int) bool {
	switch wv := w.(type) {
	case map[string]interface{}:
		ov, ok := oldv.(map[string]interface{})
		return ok && n.Kind == yaml.MappingNode && e.mapping(n, ov, wv, boundary)
	case []interface{}:
		ov, ok := oldv.([]interface{})
		return ok && n.Kind == yaml.SequenceNode && e.sequence(n, ov, wv, boundary)
	}
	return false
}

// sequence edits a block sequence item by item, as alignItems pairs the
// old items with the desired ones: a pair is edited in place, an old item
// without a pair is deleted, a new one is inserted after the item before it.
func (e *editor) sequence(node *yaml.Node, old, want []interface{}, boundary int) bool {
	if node.Style&yaml.FlowStyle != 0 || len(want) == 0 || len(node.Content) != len(old) {
		return false
	}
	before := -1 // the last old item that stays, so far
	var pending []interface{}
	for _, p := range alignItems(old, want) {
		ok := true
		switch {
		case p.want < 0:
			ok = e.deleteItem(node, p.old, boundary)
		case p.old < 0:
			pending = append(pending, want[p.want])
		default:
			ok = e.insertItems(node, before, p.old, pending, boundary) &&
				e.changeItem(node, p.old, old[p.old], want[p.want], boundary)
			before, pending = p.old, nil
		}
		if !ok {
			return false
		}
	}
	return e.insertItems(node, before, -1, pending, boundary)
}

// itemPair pairs an old item of a list with the desired item it becomes;
// old is -1 for a new item, want is -1 for an item that goes.
type itemPair struct{ old, want int }

// alignItems pairs the items of two lists in their order: first the items
// with the same identity (see itemIdentity), as many as can be, then, between
// those, the others position by position. A pair gets an old item's text,
// comments and place; new items follow the pairs of their stretch, old items
// left over go.
func alignItems(old, want []interface{}) []itemPair {
	common := commonLengths(old, want)
	var pairs []itemPair
	var olds, wants []int
	flush := func() {
		for k := 0; k < max(len(olds), len(wants)); k++ {
			p := itemPair{old: -1, want: -1}
			if k < len(olds) {
				p.old = olds[k]
			}
			if k < len(wants) {
				p.want = wants[k]
			}
			pairs = append(pairs, p)
		}
		olds, wants = nil, nil
	}
	i, j := 0, 0
	for i < len(old) || j < len(want) {
		switch {
		case i < len(old) && j < len(want) && itemIdentity(old[i]) == itemIdentity(want[j]):
			flush()
			pairs = append(pairs, itemPair{old: i, want: j})
			i, j = i+1, j+1
		case j == len(want) || i < len(old) && common[i+1][j] >= common[i][j+1]:
			olds, i = append(olds, i), i+1
		default:
			wants, j = append(wants, j), j+1
		}
	}
	flush()
	return pairs
}

// commonLengths is the table of longest common subsequences, by identity,
// of the tails old[i:] and want[j:].
func commonLengths(old, want []interface{}) [][]int {
	common := make([][]int, len(old)+1)
	for i := range common {
		common[i] = make([]int, len(want)+1)
	}
	for i := len(old) - 1; i >= 0; i-- {
		for j := len(want) - 1; j >= 0; j-- {
			if itemIdentity(old[i]) == itemIdentity(want[j]) {
				common[i][j] = common[i+1][j+1] + 1
			} else {
				common[i][j] = max(common[i+1][j], common[i][j+1])
			}
		}
	}
	return common
}

// itemIdentity says which list items are the same item: mappings with the
// same string name (an Istio route, a subset, a port), else equal values.
func itemIdentity(v interface{}) string {
	if m, ok := v.(map[string]interface{}); ok {
		if name, ok := m["name"].(string); ok {
			return "name " + name
		}
	}
	data, _ := json.Marshal(v) // a normalized object's value
	return "value " + string(data)
}

// changeItem edits item i into w: inside it when it is a collection that
// can stay, else by rewriting the item.
func (e *editor) changeItem(seq *yaml.Node, i int, oldv, w interface{}, boundary int) bool {
	if reflect.DeepEqual(oldv, w) {
		return true
	}
	end, ok := e.itemBoundary(seq, i, boundary)
	if !ok {
		return false
	}
	mark := len(e.splices)
	if e.descend(seq.Content[i], oldv, w, end) {
		return true
	}
	e.splices = e.splices[:mark]
	return e.replaceItem(seq, i, oldv, w, end)
}

// insertItems writes new items after item before, or when no item comes
// before them, above item next and the comments right above it.
func (e *editor) insertItems(seq *yaml.Node, before, next int, items []interface{}, boundary int) bool {
	if len(items) == 0 {
		return true
	}
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, w := range items {
		list.Content = append(list.Content, freshLike(w, firstMapping(seq)))
	}
	if before < 0 {
		start, ok := e.itemStart(seq, next)
		return ok && e.add(e.starts[start], e.starts[start], list, e.dashColumn(seq), true)
	}
	end, ok := e.itemBoundary(seq, before, boundary)
	if !ok {
		return false
	}
	end = e.spanEnd(e.lastLine(seq.Content[before], e.dashColumn(seq)), end)
	return e.add(e.starts[end+1], e.starts[end+1], list, e.dashColumn(seq), true)
}

// deleteItem removes the lines of item i, with the comments right above it.
func (e *editor) deleteItem(seq *yaml.Node, i, boundary int) bool {
	start, ok := e.itemStart(seq, i)
	end, known := e.itemBoundary(seq, i, boundary)
	if !ok || !known {
		return false
	}
	end = e.spanEnd(e.lastLine(seq.Content[i], e.dashColumn(seq)), end)
	if e.exposesLines(start, end) {
		return false
	}
	e.remove(e.starts[start], e.starts[end+1])
	return true
}

// itemStart is the first line of item i of a block sequence, counting the
// comment lines right above its dash at the dash's column. It fails when
// more than indentation comes before the dash.
func (e *editor) itemStart(seq *yaml.Node, i int) (int, bool) {
	dash, ok := e.dashOf(seq, seq.Content[i])
	start := e.row(seq.Content[i])
	indent := string(e.src[e.starts[start]:max(dash, e.starts[start])])
	if !ok || strings.TrimSpace(indent) != "" {
		return 0, false
	}
	above := 0 // the first line that may be a comment about this item
	if i > 0 {
		above = e.lastLine(seq.Content[i-1], e.dashColumn(seq)) + 1
	}
	for start > above && strings.HasPrefix(e.line(start-1), indent+"#") {
		start--
	}
	return start, true
}

// itemBoundary is the line of the dash of the item after item i, or the
// sequence's own boundary for its last item.
func (e *editor) itemBoundary(seq *yaml.Node, i, boundary int) (int, bool) {
	if i+1 == len(seq.Content) {
		return boundary, true
	}
	next := seq.Content[i+1]
	_, ok := e.dashOf(seq, next)
	return e.row(next), ok
}

// dashColumn is the column of the dashes of a block sequence: where its
// first item's dash is, which is not where yaml puts the sequence node when
// a tag comes before it.
func (e *editor) dashColumn(seq *yaml.Node) int {
	if len(seq.Content) > 0 && seq.Style&yaml.FlowStyle == 0 {
		before := e.prefix(seq.Content[0])
		if i := strings.LastIndex(before, "-"); i >= 0 {
			return utf8.RuneCountInString(before[:i])
		}
	}
	return seq.Column - 1
}

// dashOf returns where the "-" of a block sequence item sits, when it is on
// the item's own line.
func (e *editor) dashOf(seq, item *yaml.Node) (int, bool) {
	before := e.prefix(item)
	dash := len(e.prefix(&yaml.Node{Line: item.Line, Column: e.dashColumn(seq) + 1}))
	if dash >= len(before) || before[dash] != '-' || strings.Trim(before, " \t-") != "" {
		return 0, false
	}
	return e.starts[e.row(item)] + dash, true
}

// deleteEntry removes the lines of entry i and the comment lines right above
// it at its indentation, which speak about it.
func (e *editor) deleteEntry(node *yaml.Node, i, boundary int) bool {
	key, value := node.Content[i], node.Content[i+1]
	if strings.TrimSpace(e.prefix(key)) != "" {
		return false
	}
	end := e.spanEnd(e.entryLow(key, value), e.entryBoundary(node, i, boundary))
	above := 0 // the first line that may be a comment about this entry
	if i > 0 {
		above = e.entryLow(node.Content[i-2], node.Content[i-1]) + 1
	}
	from := e.row(key)
	for from > above && strings.HasPrefix(e.line(from-1), e.prefix(key)+"#") {
		from--
	}
	if e.exposesLines(from, end) {
		return false
	}
	e.remove(e.starts[from], e.starts[end+1])
	return true
}

// deleteLeading removes the first n entries of a mapping whose first key
// follows a "- ", so that the next entry moves up behind the dash. Comment
// lines before that entry would be lost, so they make it refuse.
func (e *editor) deleteLeading(node *yaml.Node, n int) bool {
	if 2*n >= len(node.Content) {
		return false
	}
	next := node.Content[2*n]
	end := e.spanEnd(e.entryLow(node.Content[2*n-2], node.Content[2*n-1]), e.row(next))
	for l := end + 1; l < e.row(next); l++ {
		if strings.TrimSpace(e.line(l)) != "" {
			return false
		}
	}
	e.remove(e.offset(node.Content[0]), e.offset(next))
	return true
}

// insertEntries writes the added keys after entry kept, the last one that
// stays, at the mapping's key column.
func (e *editor) insertEntries(node *yaml.Node, kept int, added []string, want map[string]interface{}, boundary int) bool {
	key, value := node.Content[kept], node.Content[kept+1]
	end := e.spanEnd(e.entryLow(key, value), e.entryBoundary(node, kept, boundary))
	entries := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range added {
		entries.Content = append(entries.Content, freshNode(k), freshNode(want[k]))
	}
	column, ok := e.keyColumn(node)
	at := e.starts[end+1]
	return ok && e.add(at, at, entries, column, true)
}

// keyColumn is the column of the keys of a block mapping, taken from a key
// with only indentation or "- " before it ("? key" has the "?" there).
func (e *editor) keyColumn(node *yaml.Node) (int, bool) {
	for i := 0; i < len(node.Content); i += 2 {
		if e.startsLine(node.Content[i]) {
			return node.Content[i].Column - 1, true
		}
	}
	return 0, false
}

// replaceEntry rewrites the text of a whole entry, "key: value", from the
// key to the last line of the value. Later lines go at the key's column, so
// a key behind "- " works too.
func (e *editor) replaceEntry(key, value *yaml.Node, oldv, w interface{}, boundary int) bool {
	if !e.startsLine(key) {
		return false
	}
	end := e.spanEnd(e.entryLow(key, value), boundary)
	k := copyTree(key, true)
	k.HeadComment = "" // above the span, so still in the text
	entry := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{k, merge(value, oldv, w, true)}}
	return e.replace(e.offset(key), e.lineEnd(end), entry, key.Column-1)
}

// replaceItem rewrites the text of sequence item i from its dash on.
func (e *editor) replaceItem(seq *yaml.Node, i int, oldv, w interface{}, boundary int) bool {
	item := seq.Content[i]
	dash, ok := e.dashOf(seq, item)
	if !ok {
		return false
	}
	end := e.spanEnd(e.lastLine(item, e.dashColumn(seq)), boundary)
	merged := merge(withoutLeadingComments(item), oldv, w, true)
	list := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{merged}}
	return e.replace(dash, e.lineEnd(end), list, e.dashColumn(seq))
}

// replaceRoot rewrites the whole root mapping, keeping the comments around it.
func (e *editor) replaceRoot(root *yaml.Node, old, want map[string]interface{}) bool {
	end := e.spanEnd(e.lastLine(root, -1), e.documentEnd(root))
	merged := merge(withoutLeadingComments(root), old, want, true)
	return e.replace(e.offset(root), e.lineEnd(end), merged, root.Column-1)
}

// replace records a splice of src[start:end] with the encoding of n, whose
// lines after the first are indented by column spaces.
func (e *editor) replace(start, end int, n *yaml.Node, column int) bool {
	return e.add(start, end, n, column, false)
}

// quoteLastBlockScalar double-quotes the scalar that ends n's text, and
// reports whether it was to be written as a literal or folded block (as
// the encoder writes a plain scalar that holds a line break).
func quoteLastBlockScalar(n *yaml.Node) bool {
	for len(n.Content) > 0 {
		n = n.Content[len(n.Content)-1]
	}
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || !quoted && strings.Contains(n.Value, "\n")
	if n.Kind != yaml.ScalarNode || !block {
		return false
	}
	n.Style = yaml.DoubleQuotedStyle
	return true
}

// encode writes n with the document's indentation and sequence style,
// without the final newline.
func (e *editor) encode(n *yaml.Node) (string, error) {
	spellFlowNulls(n, false)
	if n.Kind == yaml.SequenceNode && n.Style&yaml.FlowStyle == 0 {
		return e.encodeItems(n)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoderWithOptions(&buf, &yaml.EncoderOptions{SeqIndent: e.seqStyle})
	enc.SetIndent(e.indent)
	if err := enc.Encode(n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// encodeItems writes the items of a block sequence as the encoder writes a
// sequence under a key, which is where they go: at the top level it nests
// mappings in items differently. The key's line goes, and the items move
// to column 0.
func (e *editor) encodeItems(list *yaml.Node) (string, error) {
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "items"}
	text, err := e.encode(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{key, list}})
	if err != nil {
		return "", err
	}
	lines := strings.Split(text, "\n")[1:]
	pad := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	for i, line := range lines {
		lines[i] = line[min(pad, len(line)):]
	}
	return strings.Join(lines, "\n"), nil
}

// spellFlowNulls writes "null" for the empty nulls (as in "{a, b}") under
// a flow collection, which the encoder would write as an empty quoted
// string, and so a string.
func spellFlowNulls(n *yaml.Node, inFlow bool) {
	if inFlow && n.Kind == yaml.ScalarNode && n.Value == "" && n.ShortTag() == "!!null" {
		n.Value = "null"
	}
	for _, child := range n.Content {
		spellFlowNulls(child, inFlow || n.Style&yaml.FlowStyle != 0)
	}
}

// indentLines indents the non-empty lines of text by column spaces, the
// first line too when first is set. Empty lines stay empty: inside a block
// scalar they are the same either way.
func indentLines(text string, column int, first bool) string {
	lines := strings.Split(text, "\n")
	pad := strings.Repeat(" ", max(column, 0))
	for i, line := range lines {
		if line != "" && (i > 0 || first) {
			lines[i] = pad + line
		}
	}
	return strings.Join(lines, "\n")
}

// merge builds the node that holds want from old, which holds oldv: it keeps
// old's nodes, order, styles and comments where want keeps their values, and
// appends what is new. trailing marks the nodes that end the span being
// rewritten: their foot comments lie after it, stay in the text, and so must
// not be written again.
func merge(old *yaml.Node, oldv, want interface{}, trailing bool) *yaml.Node {
	switch w := want.(type) {
	case map[string]interface{}:
		ov, ok := oldv.(map[string]interface{})
		if ok && old.Kind == yaml.MappingNode && len(old.Content) > 0 && len(w) > 0 {
			return mergeMapping(old, ov, w, trailing)
		}
	case []interface{}:
		ov, ok := oldv.([]interface{})
		if ok && old.Kind == yaml.SequenceNode && len(old.Content) == len(ov) && len(w) > 0 {
			return mergeSequence(old, ov, w, trailing)
		}
	}
	if reflect.DeepEqual(oldv, want) && (old.Kind != yaml.ScalarNode || readsAs(old, want)) {
		n := copyTree(old, trailing)
		quoteKeptNewlines(n)
		return n
	}
	n := freshNode(want)
	if old.Kind == yaml.ScalarNode && n.Kind == yaml.ScalarNode {
		n.HeadComment, n.LineComment = old.HeadComment, old.LineComment
		if !trailing {
			n.FootComment = old.FootComment
		}
	}
	return n
}

// readsAs reports whether scalar n, written again, reads as want. yaml.v3,
// which parsed n, and the YAML 1.1 reader of sigs.k8s.io/yaml disagree on a
// few odd spellings: a lone "!" is null to one and "" to the other.
func readsAs(n *yaml.Node, want interface{}) bool {
	value := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Style: n.Style, Value: n.Value}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "k"}
	text, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{key, value}})
	if err != nil {
		return false
	}
	got, err := objectOf(text)
	return err == nil && reflect.DeepEqual(got["k"], want)
}

// mergeMapping keeps old's entries that want keeps, in their order, then
// appends want's new keys sorted.
func mergeMapping(old *yaml.Node, oldv, want map[string]interface{}, trailing bool) *yaml.Node {
	n := shallowCopy(old, trailing)
	last := len(old.Content) - 2
	for i := 0; i+1 < len(old.Content); i += 2 {
		k := keyOf(old.Content[i])
		w, ok := want[k]
		if !ok {
			continue
		}
		t := trailing && i == last
		n.Content = append(n.Content, copyTree(old.Content[i], t), merge(old.Content[i+1], oldv[k], w, t))
	}
	for _, k := range addedKeys(old, want) {
		n.Content = append(n.Content, freshNode(k), freshNode(want[k]))
	}
	return n
}

// mergeSequence merges the items alignItems pairs, writes the new ones
// shaped like an old one, and leaves out the items that go.
func mergeSequence(old *yaml.Node, oldv, want []interface{}, trailing bool) *yaml.Node {
	n := shallowCopy(old, trailing)
	last := len(old.Content) - 1
	for _, p := range alignItems(oldv, want) {
		switch {
		case p.want < 0:
		case p.old < 0:
			n.Content = append(n.Content, freshLike(want[p.want], firstMapping(old)))
		default:
			n.Content = append(n.Content, merge(old.Content[p.old], oldv[p.old], want[p.want], trailing && p.old == last))
		}
	}
	return n
}

// shallowCopy copies a node without its children.
func shallowCopy(old *yaml.Node, trailing bool) *yaml.Node {
	n := *old
	n.Content = nil
	if trailing {
		n.FootComment = ""
	}
	return &n
}

// copyTree copies n and everything under it; see merge for trailing.
func copyTree(n *yaml.Node, trailing bool) *yaml.Node {
	c := shallowCopy(n, trailing)
	for i, child := range n.Content {
		last := i == len(n.Content)-1 || n.Kind == yaml.MappingNode && i == len(n.Content)-2
		c.Content = append(c.Content, copyTree(child, trailing && last))
	}
	return c
}

// withoutLeadingComments copies n without the head comments that sit above
// where its text starts: on n and on the first node down its first children.
func withoutLeadingComments(n *yaml.Node) *yaml.Node {
	c := copyTree(n, false)
	for at := c; ; at = at.Content[0] {
		at.HeadComment = ""
		if at.Kind != yaml.MappingNode && at.Kind != yaml.SequenceNode || len(at.Content) == 0 {
			return c
		}
	}
}

// freshNode encodes a value of a normalized object as a node. Going through
// the yaml encoder quotes strings that would read as another type ("true",
// "10", "null", ""). A string ending in blank lines is double-quoted: as a
// "|+" block it would swallow the blank lines that follow it in the text.
func freshNode(v interface{}) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		// Cannot happen for JSON values; rewrite's final check would report it.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	quoteKeptNewlines(n)
	return n
}

// freshLike is freshNode for a new list item, with the keys of its mappings
// in the order they have in like, an item beside it, and the others sorted
// after them.
func freshLike(v interface{}, like *yaml.Node) *yaml.Node {
	m, ok := v.(map[string]interface{})
	if !ok || like == nil || like.Kind != yaml.MappingNode || len(m) == 0 {
		return freshNode(v)
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(like.Content); i += 2 {
		k := keyOf(like.Content[i])
		if w, ok := m[k]; ok {
			n.Content = append(n.Content, freshNode(k), freshLike(w, like.Content[i+1]))
		}
	}
	for _, k := range addedKeys(like, m) {
		n.Content = append(n.Content, freshNode(k), freshNode(m[k]))
	}
	return n
}

// firstMapping returns the first item of seq that is a mapping, or nil.
func firstMapping(seq *yaml.Node) *yaml.Node {
	for _, item := range seq.Content {
		if item.Kind == yaml.MappingNode {
			return item
		}
	}
	return nil
}

// quoteKeptNewlines double-quotes the strings under n that end in more than
// one newline, which the encoder would write as "|+" blocks.
func quoteKeptNewlines(n *yaml.Node) {
	trimmed := strings.TrimRight(n.Value, "\n")
	if n.Kind == yaml.ScalarNode && len(n.Value)-len(trimmed) > 1 || trimmed == "" && n.Value != "" {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, child := range n.Content {
		quoteKeptNewlines(child)
	}
}
