package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// auditEvent is the part of an audit log line (level Metadata) the bench reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	// Received and Completed bound the API server's time on the request.
	Received  time.Time `json:"requestReceivedTimestamp"`
	Completed time.Time `json:"stageTimestamp"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
}

// benchAgent prefixes the user agents of the bench's own requests (setup,
// resets, markers), which are never counted.
const benchAgent = "canary-bench"

// auditLog reads the API server's audit log: one JSON event a line, one
// ResponseComplete event a request (cluster.sh omits RequestReceived).
type auditLog struct{ path string }

func (a *auditLog) offset() (int64, error) {
	fi, err := os.Stat(a.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// collect returns the events of requests that others than the bench and the
// API server made from offset off on, once the marker request (whose URI
// holds marker) is in the log, and the offset after them. The marker is sent
// after the measured process exited; a short grace afterwards catches an
// event logged just after the marker's.
func (a *auditLog) collect(ctx context.Context, off int64, marker string) ([]auditEvent, int64, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		events, end, err := a.read(off)
		if err != nil {
			return nil, 0, err
		}
		found := false
		for _, e := range events {
			if strings.Contains(e.RequestURI, marker) {
				found = true
				break
			}
		}
		if found {
			time.Sleep(30 * time.Millisecond)
			if events, end, err = a.read(off); err != nil {
				return nil, 0, err
			}
			return counted(events), end, nil
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("marker %s not in the audit log %s after 20s", marker, a.path)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// read parses the complete lines from off on.
func (a *auditLog) read(off int64) ([]auditEvent, int64, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, err
	}
	complete := bytes.LastIndexByte(data, '\n') + 1
	var events []auditEvent
	for _, line := range bytes.Split(data[:complete], []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e auditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, 0, fmt.Errorf("audit log %s: %w", a.path, err)
		}
		events = append(events, e)
	}
	return events, off + int64(complete), nil
}

// counted keeps one event a request, of the program under test: not the
// bench's own requests and not the API server's requests to itself.
func counted(events []auditEvent) []auditEvent {
	var out []auditEvent
	for _, e := range events {
		if e.Stage != "ResponseComplete" && e.Stage != "Panic" {
			continue
		}
		if strings.HasPrefix(e.UserAgent, benchAgent) || e.User.Username == "system:apiserver" || strings.HasPrefix(e.UserAgent, "kube-apiserver") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// clusterScoped are the resources whose LIST has no namespace by nature.
var clusterScoped = map[string]bool{
	"namespaces": true, "nodes": true, "customresourcedefinitions": true, "apiservices": true,
	"selfsubjectaccessreviews": true, "selfsubjectrulesreviews": true, "servicecidrs": true,
	"clusterroles": true, "clusterrolebindings": true, "persistentvolumes": true, "storageclasses": true,
}

// requestKey names a request by verb and resource, the way the tables show
// it: "list virtualservices (all namespaces)", "update destinationrules
// (server dry run)", or for requests without a resource (discovery) the
// verb and path: "get /apis".
func requestKey(e auditEvent) string {
	if e.ObjectRef == nil || e.ObjectRef.Resource == "" {
		path, _, _ := strings.Cut(e.RequestURI, "?")
		return e.Verb + " " + path
	}
	r := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		r += "/" + e.ObjectRef.Subresource
	}
	key := e.Verb + " " + r
	if (e.Verb == "list" || e.Verb == "watch") && e.ObjectRef.Namespace == "" && !clusterScoped[e.ObjectRef.Resource] {
		key += " (all namespaces)"
	}
	if isDryRun(e) {
		key += " (server dry run)"
	}
	return key
}

func isDryRun(e auditEvent) bool {
	_, query, _ := strings.Cut(e.RequestURI, "?")
	for _, kv := range strings.Split(query, "&") {
		if strings.HasPrefix(kv, "dryRun=") {
			return true
		}
	}
	return false
}

// isDiscovery: a request for no resource (/api, /apis, /apis/GROUP/VERSION,
// /openapi/...), which a warm discovery cache makes needless.
func isDiscovery(e auditEvent) bool { return e.ObjectRef == nil || e.ObjectRef.Resource == "" }

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

func isWrite(verb string) bool {
	return verb == "create" || verb == "update" || verb == "patch" || verb == "delete"
}

// requestCounts counts requests by requestKey.
func requestCounts(events []auditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		out[requestKey(e)]++
	}
	return out
}

// serverMS adds up, by requestKey, the API server's time on the requests
// (from receiving the request to completing the response), in milliseconds.
func serverMS(events []auditEvent) map[string]float64 {
	out := map[string]float64{}
	for _, e := range events {
		if !e.Received.IsZero() && !e.Completed.IsZero() {
			out[requestKey(e)] += ms(e.Completed.Sub(e.Received))
		}
	}
	return out
}

// objectWrites counts the writes that store something (not dry runs, not
// reviews, which store nothing) by object: "virtualservices bench/run".
func objectWrites(events []auditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		if e.ObjectRef == nil || !isWrite(e.Verb) || isDryRun(e) || strings.HasSuffix(e.ObjectRef.Resource, "reviews") {
			continue
		}
		out[e.ObjectRef.Resource+" "+e.ObjectRef.Namespace+"/"+e.ObjectRef.Name]++
	}
	return out
}

// formatCounts renders counts as "get services 1, list deployments 1",
// reads first, then writes, then the rest, each in alphabetical order.
func formatCounts(counts map[string]int) string { return formatCountsMS(counts, nil) }

// formatCountsMS is formatCounts with, where serverMS has the key, the API
// server's time in parentheses: "list deployments 1 (2.3 ms)".
func formatCountsMS(counts map[string]int, serverMS map[string]float64) string {
	if len(counts) == 0 {
		return "none"
	}
	rank := func(key string) int {
		verb, _, _ := strings.Cut(key, " ")
		switch {
		case strings.HasPrefix(key, verb+" /"):
			return 0
		case isRead(verb):
			return 1
		case isWrite(verb):
			return 2
		}
		return 3
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
		if v, ok := serverMS[k]; ok {
			parts[i] += fmt.Sprintf(" (%.1f ms)", v)
		}
	}
	return strings.Join(parts, ", ")
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
