# kubectl-canary: build, test and install the `kubectl canary` plugin.
# `make help` lists the targets.

GO        ?= go
BINDIR    ?= /usr/local/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG       := github.com/kubectl-canary/kubectl-canary
LDFLAGS   := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.Commit=$(COMMIT)
ARGS      ?= --help

.PHONY: help build run test lint fuzz e2e check install uninstall clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/kubectl-canary
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/kubectl-canary ./cmd/kubectl-canary

run: build ## build, then run the plugin with ARGS (default --help)
	./bin/kubectl-canary $(ARGS)

test: ## unit tests: routing core, commands with fake clients, harness tools
	$(GO) test ./...

lint: ## go vet, and fail on files gofmt would change
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

fuzz: ## fuzz the routing core for a minute
	$(GO) test ./pkg/routing -run '^$$' -fuzz FuzzRoutingInvariants -fuzztime 60s

e2e: ## end-to-end suite against a local etcd + kube-apiserver with the Istio CRDs
	hack/e2e.sh

# The e2e suite's tools (etcd, kube-apiserver, istiod, Prometheus...) build
# in the background while lint and the unit tests run: on a new machine that
# build is most of the time. Its log is in bin/tools-build.log.
check: ## the test command: lint, unit tests, end-to-end suite (CI adds dist and verify-krew)
	@mkdir -p bin
	@setsid hack/e2e.sh --tools-only >/dev/null 2>bin/tools-build.log & tools=$$!; \
	$(MAKE) --no-print-directory lint test || { kill -- -$$tools 2>/dev/null; exit 1; }; \
	echo "check: waiting for the e2e tools (bin/tools-build.log)"; \
	wait $$tools || { cat bin/tools-build.log; exit 1; }
	$(MAKE) --no-print-directory e2e

# Performance against kubectl on a local cluster (hack/bench/main.go says
# what is measured); BENCH_ARGS go to the bench, e.g. -skip-big or -runs 21.
# The cluster serves the Gateway API too, for the bench's HTTPRoute canary.
.PHONY: bench
BENCH_ARGS ?=

bench: build ## plugin vs kubectl on a local cluster: table on stdout, JSON in .bench/
	hack/cluster.sh run --gateway-api -- $(GO) run ./hack/bench -plugin bin/kubectl-canary -go $(GO) -out .bench $(BENCH_ARGS)

# Release. dist/ and plugins/canary.yaml need a Krew version (vX.Y.Z): VERSION
# when given on the command line or in the environment, else the v* tag at
# HEAD, else v0.0.0-g<commit> (hack/dist.sh).
.PHONY: dist krew-manifest verify-krew
DIST_VERSION = $(if $(filter file,$(origin VERSION)),,$(VERSION))

dist: ## reproducible archives for 5 platforms and their checksums in dist/
	VERSION=$(DIST_VERSION) hack/dist.sh

krew-manifest: ## render plugins/canary.yaml from krew-manifest.yaml and dist/
	$(GO) run ./hack/krewmanifest -template krew-manifest.yaml -dist dist -o plugins/canary.yaml

verify-krew: krew-manifest ## validate plugins/canary.yaml and install dist/ with krew
	hack/verify-krew.sh

install: build ## put kubectl-canary in BINDIR so `kubectl canary` works
	install -d $(BINDIR)
	install -m 0755 bin/kubectl-canary $(BINDIR)/kubectl-canary
	@echo "installed $(BINDIR)/kubectl-canary; try: kubectl canary version"

uninstall: ## remove kubectl-canary from BINDIR
	rm -f $(BINDIR)/kubectl-canary

clean: ## remove build output (the cached cluster binaries in hack/bin stay)
	rm -rf bin dist
