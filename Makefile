# cors-webhook: build, generate, test and demo. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

BIN        := $(CURDIR)/bin
TOOLS_DIR  := hack/tools
K8S_VERSION := v1.37.2
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO         ?= go
GO_TEST_FLAGS ?= -count=1 -timeout 40m
# The unit tests run under the race detector: the tests that run admissions, validations and
# index updates concurrently (TestConcurrentUse, TestInjectionFollowsChainChanges, ...) assert
# nothing without it. It needs cgo (gcc); UNIT_FLAGS= runs them without. The allocation budgets
# (ALLOC_TESTS) run once more without it: under it sync.Pool drops items at random, so pooled
# objects (regexp's matchers) are allocated again now and then.
UNIT_FLAGS ?= -race
ALLOC_TESTS := -run 'NotAllocate' ./cors/

# The control plane, the node and the CLIs, built from Go modules (hack/tools). The demo needs
# NODE_TOOLS; make test adds controller-gen (make generate) and kube-score (make lint).
NODE_TOOLS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kubectl helm
NODE_TOOL_BINS := $(addprefix $(BIN)/,$(NODE_TOOLS))
TOOLS := $(NODE_TOOLS) controller-gen
TOOL_BINS := $(addprefix $(BIN)/,$(TOOLS))
# The node's container runtime (its own module: containerd's dependencies differ from Kubernetes').
RUNTIME_DIR  := $(TOOLS_DIR)/containerd
RUNTIME_BINS := $(addprefix $(BIN)/,containerd containerd-shim-runc-v2 ctr)
# Cluster DNS: CoreDNS with only the plugins the node needs (its own module too).
COREDNS_DIR := $(TOOLS_DIR)/coredns
TOOL_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37

export KUBEBUILDER_ASSETS := $(BIN)

# The tools are test infrastructure, never shipped: they are compiled without inlining (-l) and
# with the compiler's garbage collector at GOGC=400, which cuts a cold build's compile time by
# about a third (docs/benchmarks.md, "Cold build"). The product's binaries and images keep the
# full optimizer.
TOOL_GO := env GOGC=400 $(GO)
TOOL_GCFLAGS := all=-l

# A build that runs for minutes says what it builds and for how long (hack/progress.sh).
PROGRESS := bash $(CURDIR)/hack/progress.sh
# What the machine must have (hack/doctor/doctor.sh): make demo needs the node's packages,
# make test also Chromium.
DOCTOR_FOR ?= test

# Images (hack/images, no container engine): tagged with the chart's appVersion, which is what the
# chart's defaults run.
IMAGE_TAG        ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/cors-webhook/Chart.yaml)
IMAGE_REPOSITORY ?= ghcr.io/cors-webhook
REVISION         ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGES_DIR       := $(BIN)/images

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build cors-webhook and the static cors-sidecar into bin/.
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/cors-webhook ./cmd/cors-webhook
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/cors-sidecar ./cmd/cors-sidecar

# kubectl cors: the cors-webhook binary under the name kubectl looks plugins up by; it then has
# only the user commands (describe, validate, inject, convert, version). The archives are what
# krew installs (.krew.yaml), one per platform.
KUBECTL_CORS_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

.PHONY: kubectl-cors
kubectl-cors: ## Build the kubectl plugin bin/kubectl-cors (`kubectl cors ...` once on $$PATH).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/kubectl-cors ./cmd/cors-webhook

.PHONY: kubectl-cors-dist
kubectl-cors-dist: ## The krew archives bin/dist/kubectl-cors_VERSION_OS_ARCH.tar.gz (KUBECTL_CORS_PLATFORMS).
	@rm -rf $(BIN)/dist && mkdir -p $(BIN)/dist
	@for p in $(KUBECTL_CORS_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		dir=$(BIN)/dist/$$os-$$arch; mkdir -p $$dir; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $$dir/kubectl-cors$$ext ./cmd/cors-webhook || exit 1; \
		cp README.md $$dir/; \
		tar -C $$dir -czf $(BIN)/dist/kubectl-cors_$(VERSION)_$${os}_$${arch}.tar.gz kubectl-cors$$ext README.md || exit 1; \
		echo "$(BIN)/dist/kubectl-cors_$(VERSION)_$${os}_$${arch}.tar.gz"; \
	done

.PHONY: images
images: ## OCI images of cors-webhook, cors-sidecar and cors-cni (linux/amd64+arm64) in bin/images, no Docker.
	$(GO) run ./hack/images build -out $(IMAGES_DIR) -tag $(IMAGE_TAG) -version $(VERSION) -revision "$(REVISION)" -repository $(IMAGE_REPOSITORY)

# The chart is pushed as an OCI artifact beside the images: REGISTRY/charts/cors-webhook:CHART_VERSION,
# installed with `helm install cors-webhook oci://REGISTRY/charts/cors-webhook --version CHART_VERSION`.
# HELM_PUSH_FLAGS=--plain-http for a registry without TLS (the e2e tests' in-process one).
CHART_VERSION   ?= $(shell sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/cors-webhook/Chart.yaml)
CHARTS_DIR      := $(BIN)/charts
HELM_PUSH_FLAGS ?=

.PHONY: push
push: $(BIN)/helm ## Push the images `make images` built to REGISTRY/NAME:IMAGE_TAG and the chart to oci://REGISTRY/charts (REGISTRY=host[:port]/path).
	@if [ -z "$(REGISTRY)" ]; then echo "usage: make push REGISTRY=host[:port]/path (after make images)"; exit 1; fi
	$(GO) run ./hack/images push -out $(IMAGES_DIR) -registry $(REGISTRY) -tag $(IMAGE_TAG)
	@mkdir -p $(CHARTS_DIR)
	$(BIN)/helm package charts/cors-webhook --destination $(CHARTS_DIR)
	$(BIN)/helm push $(CHARTS_DIR)/cors-webhook-$(CHART_VERSION).tgz oci://$(REGISTRY)/charts $(HELM_PUSH_FLAGS)

# Signatures and SBOMs (hack/sign, a module of its own: sigstore/cosign's Go libraries): every image
# index and the chart get a cosign signature, every platform image a signed CycloneDX SBOM made
# from its binaries' Go build info. With a key pair here (`cd hack/sign && go run . keygen`);
# the release workflow signs keyless (Fulcio, Rekor) and adds SLSA provenance.
.PHONY: sign
sign: ## Sign what make push published and attach SBOMs (REGISTRY=..., COSIGN_KEY=cosign.key, password in COSIGN_PASSWORD).
	@if [ -z "$(REGISTRY)" ] || [ -z "$(COSIGN_KEY)" ]; then echo "usage: make sign REGISTRY=host[:port]/path COSIGN_KEY=cosign.key"; exit 1; fi
	cd hack/sign && $(GO) run . sign -key $(abspath $(COSIGN_KEY)) -registry $(REGISTRY) -tag $(IMAGE_TAG) -chart-version $(CHART_VERSION)

.PHONY: verify
verify: ## Verify the signatures of the images and the chart and the images' signed SBOMs (REGISTRY=..., COSIGN_PUB=cosign.pub).
	@if [ -z "$(REGISTRY)" ] || [ -z "$(COSIGN_PUB)" ]; then echo "usage: make verify REGISTRY=host[:port]/path COSIGN_PUB=cosign.pub (keyless releases: docs/install.md)"; exit 1; fi
	cd hack/sign && $(GO) run . verify -key $(abspath $(COSIGN_PUB)) -registry $(REGISTRY) -tag $(IMAGE_TAG) -chart-version $(CHART_VERSION)

.PHONY: standins
standins: ## Test stand-in images (pause, pipy, curl) as tarballs in bin/images/standins.
	$(GO) run ./hack/images standins -out $(IMAGES_DIR)/standins

.PHONY: doctor
doctor: ## Check what make test (DOCTOR_FOR=demo: make demo) needs of this machine, without building or installing.
	@bash hack/doctor/doctor.sh $(DOCTOR_FOR)

.PHONY: prereqs
prereqs: ## Install what make test needs and the machine lacks (apt-get, as root), or stop at once naming the command.
	@bash hack/doctor/doctor.sh --install $(DOCTOR_FOR)

.PHONY: tools node-tools
tools: node-tools $(BIN)/controller-gen $(BIN)/kube-score ## Build the local control plane, node and CLIs (first time: ~12 minutes on 2 cores).
node-tools: $(NODE_TOOL_BINS) $(RUNTIME_BINS) $(BIN)/coredns ## What make demo runs: control plane, node, container runtime, CoreDNS, kubectl, helm.

# One go build for the node's tools: they share most packages, so one invocation compiles them once.
$(NODE_TOOL_BINS) &: $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum $(filter-out $(COREDNS_DIR)/main.go,$(wildcard $(TOOLS_DIR)/*/main.go))
	@mkdir -p $(BIN)
	@cd $(TOOLS_DIR) && $(PROGRESS) "building Kubernetes $(K8S_VERSION) ($(NODE_TOOLS)) into bin/ from $(TOOLS_DIR): ~10 minutes the first time on 2 cores, cached after" \
		$(TOOL_GO) build -gcflags "$(TOOL_GCFLAGS)" -ldflags "$(TOOL_LDFLAGS)" -o $(BIN)/ \
		./kube-apiserver ./kube-controller-manager ./kube-scheduler ./kubelet ./kube-proxy ./etcd ./kubectl helm.sh/helm/v4/cmd/helm
	@touch $(NODE_TOOL_BINS)

$(BIN)/controller-gen: $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum
	@mkdir -p $(BIN)
	@cd $(TOOLS_DIR) && $(PROGRESS) "building controller-gen into bin/" $(TOOL_GO) build -gcflags "$(TOOL_GCFLAGS)" -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen

$(RUNTIME_BINS) &: $(RUNTIME_DIR)/go.mod $(RUNTIME_DIR)/go.sum
	@mkdir -p $(BIN)
	@cd $(RUNTIME_DIR) && CGO_ENABLED=0 $(PROGRESS) "building containerd v2, its runc shim and ctr into bin/ from $(RUNTIME_DIR): ~2 minutes the first time" \
		$(TOOL_GO) build -gcflags "$(TOOL_GCFLAGS)" -tags "no_btrfs no_devmapper no_zfs no_aufs" -ldflags "-s -w" -o $(BIN)/ \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr
	@touch $(RUNTIME_BINS)

$(BIN)/coredns: $(COREDNS_DIR)/go.mod $(COREDNS_DIR)/go.sum $(COREDNS_DIR)/main.go
	@mkdir -p $(BIN)
	@cd $(COREDNS_DIR) && CGO_ENABLED=0 $(PROGRESS) "building CoreDNS (kubernetes, cache, errors, health, ready, loop plugins) into bin/ from $(COREDNS_DIR)" \
		$(TOOL_GO) build -gcflags "$(TOOL_GCFLAGS)" -trimpath -ldflags "-s -w" -o $(BIN)/coredns .

# kube-score (make lint) has a module of its own: it needs k8s.io/api packages that the
# control plane's version no longer has.
$(BIN)/kube-score: $(TOOLS_DIR)/kube-score/go.mod $(TOOLS_DIR)/kube-score/go.sum
	@mkdir -p $(BIN)
	@cd $(TOOLS_DIR)/kube-score && $(PROGRESS) "building kube-score into bin/" $(TOOL_GO) build -gcflags "$(TOOL_GCFLAGS)" -o $(BIN)/kube-score github.com/zegl/kube-score/cmd/kube-score

.PHONY: generate
generate: $(BIN)/controller-gen ## Regenerate deepcopy code and the CRDs in charts/cors-webhook/crds.
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=charts/cors-webhook/crds

.PHONY: verify-generate
verify-generate: generate ## Fail when the committed generated files are stale.
	@if [ -n "$$(git status --porcelain -- api charts/cors-webhook/crds)" ]; then \
		echo "generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- api charts/cors-webhook/crds; git diff -- api charts/cors-webhook/crds | head -50; exit 1; fi

.PHONY: lint
lint: kube-score ## gofmt, go vet, go.mod/go.sum as go mod tidy leaves them, and kube-score.
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@cd $(TOOLS_DIR) && $(GO) mod tidy -diff || { echo "$(TOOLS_DIR)/go.mod is not tidy: run 'go mod tidy' there and commit"; exit 1; }
	@cd $(TOOLS_DIR)/kube-score && $(GO) mod tidy -diff || { echo "$(TOOLS_DIR)/kube-score/go.mod is not tidy: run 'go mod tidy' there and commit"; exit 1; }
	@cd hack/metricnames && $(GO) mod tidy -diff || { echo "hack/metricnames/go.mod is not tidy: run 'go mod tidy' there and commit"; exit 1; }
	@cd hack/sign && $(GO) mod tidy -diff || { echo "hack/sign/go.mod is not tidy: run 'go mod tidy' there and commit"; exit 1; }
	$(GO) vet ./...
	cd $(TOOLS_DIR) && $(GO) vet ./...
	cd hack/metricnames && $(GO) vet ./...
	cd hack/sign && $(GO) vet ./...

# kube-score over what a platform team would vet: the chart in both certificate modes and the
# guide's manifests as `cors-webhook inject` injects them with the chart's default sidecar image
# and pull policy.
# CRITICAL findings fail unless hack/kube-score-exceptions.yaml lists them with a reason.
KUBE_SCORE_DIR := $(BIN)/kube-score-renderings
# The chart with every optional monitoring object (Services, ServiceMonitor, PodMonitor,
# dashboard, PrometheusRule).
KUBE_SCORE_MONITORING_FLAGS := --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true \
	--set metrics.dashboard.enabled=true --set metrics.prometheusRule.enabled=true
# The injected image is cors-webhook inject's default (the appVersion tag), as a user gets it.
KUBE_SCORE_INJECT_FLAGS := --sidecar-image-pull-policy IfNotPresent

.PHONY: kube-score
kube-score: $(BIN)/kube-score $(BIN)/helm ## kube-score over the chart (both certificate modes, and with cni.enabled) and the injected examples.
	@mkdir -p $(KUBE_SCORE_DIR)
	$(BIN)/helm template cors-webhook charts/cors-webhook --namespace cors-webhook > $(KUBE_SCORE_DIR)/chart-self-signed.yaml
	$(BIN)/helm template cors-webhook charts/cors-webhook --namespace cors-webhook --set certs.mode=cert-manager > $(KUBE_SCORE_DIR)/chart-cert-manager.yaml
	$(BIN)/helm template cors-webhook charts/cors-webhook --namespace cors-webhook $(KUBE_SCORE_MONITORING_FLAGS) > $(KUBE_SCORE_DIR)/chart-monitoring.yaml
	$(BIN)/helm template cors-webhook charts/cors-webhook --namespace cors-webhook --set cni.enabled=true > $(KUBE_SCORE_DIR)/chart-cni.yaml
	$(GO) build -o $(KUBE_SCORE_DIR)/cors-webhook ./cmd/cors-webhook
	cd examples/manifests && { \
		$(KUBE_SCORE_DIR)/cors-webhook inject --namespace pipy $(KUBE_SCORE_INJECT_FLAGS) \
			-f ns.yaml,cors.yaml,cors-policy-chain.yaml,cors-policy-config.yaml,pipy-ok.pipy.yaml; \
		echo "---"; \
		$(KUBE_SCORE_DIR)/cors-webhook inject --namespace curl $(KUBE_SCORE_INJECT_FLAGS) -f curl.yaml; \
	} > $(KUBE_SCORE_DIR)/injected-examples.yaml
	$(GO) run ./hack/kubescore -kube-score $(BIN)/kube-score -kubernetes-version $(basename $(K8S_VERSION)) \
		-exceptions hack/kube-score-exceptions.yaml \
		chart-self-signed=$(KUBE_SCORE_DIR)/chart-self-signed.yaml \
		chart-cert-manager=$(KUBE_SCORE_DIR)/chart-cert-manager.yaml \
		chart-monitoring=$(KUBE_SCORE_DIR)/chart-monitoring.yaml \
		chart-cni=$(KUBE_SCORE_DIR)/chart-cni.yaml \
		injected-examples=$(KUBE_SCORE_DIR)/injected-examples.yaml

.PHONY: test
test: prereqs tools images standins verify-generate lint ## Unit and end-to-end tests (real kube-apiserver, kubectl, helm, network namespaces).
	$(GO) test $(GO_TEST_FLAGS) $(UNIT_FLAGS) $$($(GO) list ./... | grep -v /e2e)
	$(GO) test $(GO_TEST_FLAGS) $(ALLOC_TESTS)
	cd hack/metricnames && $(GO) test $(GO_TEST_FLAGS) ./...
	cd hack/sign && $(GO) test $(GO_TEST_FLAGS) ./...
	$(GO) test $(GO_TEST_FLAGS) -v ./e2e/...
	$(MAKE) fuzz-ci

.PHONY: unit
unit: ## Unit tests only (no control plane), under the race detector.
	$(GO) test $(GO_TEST_FLAGS) $(UNIT_FLAGS) $$($(GO) list ./... | grep -v /e2e)
	$(GO) test $(GO_TEST_FLAGS) $(ALLOC_TESTS)
	cd hack/metricnames && $(GO) test $(GO_TEST_FLAGS) ./...
	cd hack/sign && $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: e2e
e2e: prereqs tools images standins ## End-to-end tests only.
	$(GO) test $(GO_TEST_FLAGS) -v ./e2e/...

# The demo's program is built as the images it builds are (CGO off, -trimpath), so that both
# compile the client libraries once.
.PHONY: demo
demo: DOCTOR_FOR = demo
demo: prereqs node-tools ## The seed guide on an embedded control plane (or on $$KUBECONFIG's cluster).
	@CGO_ENABLED=0 $(PROGRESS) "compiling the demo" $(GO) build -trimpath -o $(BIN)/demo ./hack/demo
	$(BIN)/demo

.PHONY: bench
bench: ## Go benchmarks.
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-memory
bench-memory: tools ## RSS of serve and controller with 10,000 pods, 1,000 chains, 10,000 Services in a real API server (table for docs/benchmarks.md).
	$(GO) run ./hack/bench-memory

.PHONY: bench-admission
bench-admission: ## Admission latency, HTTPS reviews/s against a no-op handler, PluginChain validation among 10,000 (lines for docs/benchmarks.md).
	@out=$$($(GO) test -run '^$$' -bench '^BenchmarkAdmissionReport$$' -benchtime=1x ./webhook/ 2>&1) || { echo "$$out"; exit 1; }; \
	echo "$$out" | grep -E '^(inject-(selected|unselected) |reviews inject/noop |validate-chain )'

FUZZTIME ?= 10m
FUZZ_TARGETS = FuzzRequestHead FuzzChunkedBody FuzzResponseHead

.PHONY: fuzz
fuzz: ## Differential fuzzing of the sidecar's HTTP/1.1 readers against net/http, the pod's managedFields cut, its replica key, the injection patch against gomodules.xyz/jsonpatch, cors.Decode (user input) against encoding/json and the GEP-1767 wildcard matcher; FUZZTIME (10m) per target.
	@for t in $(FUZZ_TARGETS); do echo ">> $$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./sidecar/ || exit 1; done
	@echo ">> FuzzWithoutManagedFields"; $(GO) test -run '^$$' -fuzz '^FuzzWithoutManagedFields$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./internal/podjson/
	@echo ">> FuzzReplicaKey"; $(GO) test -run '^$$' -fuzz '^FuzzReplicaKey$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./internal/podjson/
	@echo ">> FuzzPatch"; $(GO) test -run '^$$' -fuzz '^FuzzPatch$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./internal/podjson/
	@echo ">> FuzzDecode"; $(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./cors/
	@echo ">> FuzzWildcardMatch"; $(GO) test -run '^$$' -fuzz '^FuzzWildcardMatch$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) ./cors/

.PHONY: fuzz-ci
fuzz-ci: ## The fuzz targets for a bounded time each, as make test runs them.
	$(MAKE) fuzz FUZZTIME=20s

.PHONY: bench-sidecar
bench-sidecar: ## wrk: app direct vs cors-sidecar vs nginx and HAProxy; writes docs/benchmarks.md.
	bash hack/bench-sidecar.sh
