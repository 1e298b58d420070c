package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// MinScrapes is how many scrape intervals an analysis window, and each step
// of a run, must span. rate() and increase() need two samples inside the
// window; four leave two even when a scrape fails or the latest one is not
// yet ingested when the analysis runs (Grafana's $__rate_interval is four
// scrape intervals for the same reason).
const MinScrapes = 4

// DefaultMinInterval is the minimum window and step when the scrape
// interval cannot be read: the fixed minimum of earlier versions, so that a
// Prometheus whose targets cannot be read refuses nothing it accepted before.
const DefaultMinInterval = 10 * time.Second

// minIntervalFloor bounds the minimum from below however often Prometheus
// scrapes: a run records when a step began to the second, which can take up
// to a second off the step, all of a 1s step.
const minIntervalFloor = 2 * time.Second

// MinInterval is the shortest analysis window and run step for targets
// scraped at these intervals: MinScrapes of the longest (the Service's
// figures sum the series of every target, so each needs its samples), never
// below minIntervalFloor; DefaultMinInterval when no interval is known.
func MinInterval(scrapeIntervals []time.Duration) time.Duration {
	var longest time.Duration
	for _, d := range scrapeIntervals {
		longest = max(longest, d)
	}
	if longest <= 0 {
		return DefaultMinInterval
	}
	return max(MinScrapes*longest, minIntervalFloor)
}

// ScrapeMinimum is the shortest window and run step for a Service and where
// that figure comes from.
type ScrapeMinimum struct {
	Min time.Duration
	// ScrapeInterval is the longest scrape interval of the targets; Mixed
	// says their intervals differ.
	ScrapeInterval time.Duration
	Mixed          bool
	// Targets is how many active targets the interval was read from, and
	// Which says which ones they are ("reporting shop/reviews").
	Targets int
	Which   string
	// Unknown says why the scrape interval is unknown, in which case Min is
	// DefaultMinInterval; empty when it was read.
	Unknown string
}

// Source says where Min comes from, for messages.
func (m ScrapeMinimum) Source() string {
	if m.Unknown != "" {
		return "the default minimum, as the scrape interval is unknown: " + m.Unknown
	}
	targets := fmt.Sprintf("%d target", m.Targets)
	if m.Targets != 1 {
		targets += "s"
	}
	interval := fmt.Sprintf("the %s scrape interval", model.Duration(m.ScrapeInterval))
	if m.Mixed {
		interval = fmt.Sprintf("the longest scrape interval, %s,", model.Duration(m.ScrapeInterval))
	}
	return fmt.Sprintf("%d scrapes at %s of %s %s", MinScrapes, interval, targets, m.Which)
}

// Settle is how long after a routing change its traffic is left out of a
// split: a scrape interval for the proxies to receive the change, and one
// for the last sample before it to leave the range.
func (m ScrapeMinimum) Settle() time.Duration {
	interval := m.ScrapeInterval
	if interval == 0 {
		interval = m.Min / MinScrapes
	}
	return 2 * interval
}

func unknownScrapeInterval(format string, args ...any) ScrapeMinimum {
	return ScrapeMinimum{Min: DefaultMinInterval, Unknown: fmt.Sprintf(format, args...)}
}

// scrapeTarget is an active target as Prometheus's targets API shows it.
// promv1.ActiveTarget has no field for scrapeInterval, hence this type and
// the request of activeTargets instead of promv1.API's Targets.
type scrapeTarget struct {
	Labels         map[string]string `json:"labels"`
	ScrapeInterval string            `json:"scrapeInterval"`
}

// ReadScrapeMinimum derives the shortest window and run step for a
// Service from the scrape interval of the targets that report its metrics,
// read from Prometheus's targets API (where names Prometheus in messages):
//   - the active targets whose job and instance labels are those of the
//     Service's istio_requests_total series (reporter="destination");
//   - while the Service has no series yet, the active targets of the jobs
//     that collect istio_requests_total at all: its sidecars will be
//     scraped by one of them once they report;
//   - when neither is known, DefaultMinInterval, with the reason in Unknown.
//
// It never fails: an unreadable Prometheus is a reason for the default.
func ReadScrapeMinimum(ctx context.Context, client api.Client, namespace, service string, now time.Time, where string) ScrapeMinimum {
	targets, err := activeTargets(ctx, client)
	if err != nil {
		return unknownScrapeInterval("the targets API of Prometheus at %s is not readable: %v", where, err)
	}
	prom := promv1.NewAPI(client)
	svc := namespace + "/" + service
	query := fmt.Sprintf(`count by (job, instance) (%s{%s})`, RequestsMetric, Target{Namespace: namespace, Service: service}.serviceMatchers())
	reporting, err := groups(ctx, prom, query, now)
	if err != nil {
		return unknownScrapeInterval("cannot query Prometheus at %s for the targets reporting %s: %v", where, svc, err)
	}
	// A target's labels are on every series it reports; job and instance
	// are the ones that tell targets apart.
	type jobInstance struct{ job, instance string }
	reporters := map[jobInstance]bool{}
	for _, g := range reporting {
		reporters[jobInstance{string(g["job"]), string(g["instance"])}] = true
	}
	m, ok := minimumOf(targets, func(l map[string]string) bool { return reporters[jobInstance{l["job"], l["instance"]}] })
	if ok {
		m.Which = "reporting " + svc
	}
	if ok || m.Unknown != "" {
		return m
	}
	query = fmt.Sprintf(`count by (job) (%s)`, RequestsMetric)
	collecting, err := groups(ctx, prom, query, now)
	if err != nil {
		return unknownScrapeInterval("cannot query Prometheus at %s for the jobs collecting %s: %v", where, RequestsMetric, err)
	}
	jobs := map[string]bool{}
	for _, g := range collecting {
		jobs[string(g["job"])] = true
	}
	m, ok = minimumOf(targets, func(l map[string]string) bool { return jobs[l["job"]] })
	if ok {
		names := make([]string, 0, len(jobs))
		for j := range jobs {
			names = append(names, j)
		}
		sort.Strings(names)
		m.Which = fmt.Sprintf("of job %s, which collects %s (%s has no series yet)", names[0], RequestsMetric, svc)
		if len(names) > 1 {
			m.Which = fmt.Sprintf("of jobs %s, which collect %s (%s has no series yet)", strings.Join(names, ", "), RequestsMetric, svc)
		}
	}
	if ok || m.Unknown != "" {
		return m
	}
	return unknownScrapeInterval("no active target of Prometheus at %s reports %s or collects %s yet", where, svc, RequestsMetric)
}

// minimumOf is the minimum for the targets that match; ok is false when
// none does, or when none of them says its scrape interval (Unknown set).
func minimumOf(targets []scrapeTarget, match func(labels map[string]string) bool) (ScrapeMinimum, bool) {
	var intervals []time.Duration
	matched := 0
	for _, t := range targets {
		if !match(t.Labels) {
			continue
		}
		matched++
		if d, err := model.ParseDuration(t.ScrapeInterval); err == nil && d > 0 {
			intervals = append(intervals, time.Duration(d))
		}
	}
	switch {
	case matched == 0:
		return ScrapeMinimum{}, false
	case len(intervals) == 0:
		return unknownScrapeInterval("the targets API does not give the scrape interval of the %d matching targets (an older Prometheus)", matched), false
	}
	m := ScrapeMinimum{Min: MinInterval(intervals), Targets: len(intervals)}
	for _, d := range intervals {
		if m.ScrapeInterval != 0 && d != m.ScrapeInterval {
			m.Mixed = true
		}
		m.ScrapeInterval = max(m.ScrapeInterval, d)
	}
	return m, true
}

// groups runs a `count by (...)` query and returns the label sets of
// its groups.
func groups(ctx context.Context, prom promv1.API, query string, now time.Time) ([]model.Metric, error) {
	v, _, _, err := prom.Query(ctx, query, now)
	if err != nil {
		return nil, fmt.Errorf("%w\n  query: %s", err, query)
	}
	vec, _ := v.(model.Vector)
	out := make([]model.Metric, len(vec))
	for i, s := range vec {
		out[i] = s.Metric
	}
	return out, nil
}

// activeTargets reads GET /api/v1/targets?state=active.
func activeTargets(ctx context.Context, client api.Client) ([]scrapeTarget, error) {
	u := client.URL("/api/v1/targets", nil)
	u.RawQuery = "state=active"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		// Message is where the API server's proxy puts its error (a
		// Kubernetes Status), e.g. when the Service has no endpoints.
		Message string `json:"message"`
		Data    struct {
			ActiveTargets []scrapeTarget `json:"activeTargets"`
		} `json:"data"`
	}
	decodeErr := json.Unmarshal(body, &answer)
	if resp.StatusCode/100 != 2 {
		switch {
		case decodeErr == nil && answer.Error != "":
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, answer.Error)
		case decodeErr == nil && answer.Message != "":
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, answer.Message)
		}
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, excerpt(body))
	}
	if decodeErr != nil || answer.Status != "success" {
		return nil, fmt.Errorf("not an answer of the Prometheus targets API: %s", excerpt(body))
	}
	return answer.Data.ActiveTargets, nil
}

func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
