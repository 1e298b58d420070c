package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clustersNS and clustersSvc are where the several-clusters measurement
// runs its canary, in every cluster.
const (
	clustersNS  = "bench-clusters"
	clustersSvc = "reviews"
	// clustersLimit bounds weight over three clusters against one (issue 17).
	clustersLimit = 1.3
)

// clustersResult is `weight` with --contexts over one cluster and over
// three (the bench's and two more of hack/cluster.sh).
type clustersResult struct {
	OneMS   float64   `json:"oneClusterMs"`
	ThreeMS float64   `json:"threeClustersMs"`
	Ratio   float64   `json:"ratio"`
	OneRuns []float64 `json:"oneClusterRunsMs"`
	Three   []float64 `json:"threeClustersRunsMs"`
}

// severalClusters starts two more clusters, runs one canary across the
// three, and times `weight` over all three against `weight` over one,
// alternating the two so that the machine's load touches both alike.
func (b *bench) severalClusters(ctx context.Context, work string) (*clustersResult, error) {
	script := os.Getenv("CANARY_E2E_CLUSTER_SH")
	if script == "" {
		return nil, fmt.Errorf("CANARY_E2E_CLUSTER_SH is not set; run the bench with make bench")
	}
	kubeconfigs := map[string]string{"one": b.cfg.kubeconfig}
	for _, name := range []string{"two", "three"} {
		dir := filepath.Join(work, "cluster-"+name)
		out, err := exec.CommandContext(ctx, script, "up", dir).Output()
		defer exec.Command(script, "down", dir).Run() //nolint:errcheck // best effort on the way out
		if err != nil {
			return nil, fmt.Errorf("cluster.sh up %s: %w", dir, err)
		}
		env, err := readEnv(strings.TrimSpace(string(out)))
		if err != nil {
			return nil, err
		}
		kubeconfigs[name] = env["CANARY_E2E_KUBECONFIG"]
	}
	merged := filepath.Join(work, "clusters.kubeconfig")
	if err := mergeKubeconfigs(kubeconfigs, merged); err != nil {
		return nil, err
	}
	for _, path := range kubeconfigs {
		if err := b.deployClustersCanary(ctx, path); err != nil {
			return nil, err
		}
	}
	cache := filepath.Join(work, "cache/plugin-clusters")
	weight := func(contexts string, w int) []string {
		return []string{b.cfg.plugin, "--kubeconfig", merged, "--cache-dir", cache, "weight", clustersSvc, fmt.Sprint(w), "-n", clustersNS, "--contexts", contexts}
	}
	if err := b.runQuiet(ctx, []string{b.cfg.plugin, "--kubeconfig", merged, "--cache-dir", cache, "start", clustersSvc, "-n", clustersNS, "--contexts", "one,two,three"}); err != nil {
		return nil, err
	}
	res := &clustersResult{}
	for i := 0; i < b.cfg.runs+1; i++ {
		// Each run changes the weight, so each writes; the first warms up.
		one, err := b.timed(ctx, weight("one", 20+i%2*10))
		if err != nil {
			return nil, err
		}
		three, err := b.timed(ctx, weight("one,two,three", 20+i%2*10))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			res.OneRuns, res.Three = append(res.OneRuns, ms(one)), append(res.Three, ms(three))
		}
	}
	res.OneMS, res.ThreeMS = median(res.OneRuns), median(res.Three)
	res.Ratio = ratio(res.ThreeMS, res.OneMS)
	return res, nil
}

// timed runs a command once and returns its wall time.
func (b *bench) timed(ctx context.Context, argv []string) (time.Duration, error) {
	t0 := time.Now()
	err := b.runQuiet(ctx, argv)
	return time.Since(t0), err
}

// deployClustersCanary creates the Service, its two Deployments and its
// routing in one cluster.
func (b *bench) deployClustersCanary(ctx context.Context, kubeconfig string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cl, err := newClients(config)
	if err != nil {
		return err
	}
	if err := cl.createNamespace(ctx, clustersNS); err != nil {
		return err
	}
	return cl.createService(ctx, clustersNS, clustersSvc)
}

// mergeKubeconfigs writes one kubeconfig with a context per cluster, each
// the current context of its own kubeconfig.
func mergeKubeconfigs(kubeconfigs map[string]string, to string) error {
	merged := clientcmdapi.NewConfig()
	for name, path := range kubeconfigs {
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			return err
		}
		current := cfg.Contexts[cfg.CurrentContext]
		merged.Clusters[name] = cfg.Clusters[current.Cluster]
		merged.AuthInfos[name] = cfg.AuthInfos[current.AuthInfo]
		merged.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	merged.CurrentContext = "one"
	return clientcmd.WriteToFile(*merged, to)
}

// readEnv parses the `export NAME=VALUE` lines cluster.sh writes, VALUE
// quoted by printf %q (paths here need no unquoting beyond that).
func readEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			env[name] = strings.Trim(value, `'"`)
		}
	}
	return env, nil
}
