# scimsync: every command a developer or operator needs. `make help` lists them.
SHELL := bash
GO ?= go
PKGS := ./...

.PHONY: help tools services test check unit demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

tools: ## build what is missing: temporal CLI v1.5.1, the Temporal server 1.29.1 and its SQL tool, workflowcheck, SCIMMY (npm)
	@scripts/ensure-tools.sh

services: ## start PostgreSQL when it is not running
	@scripts/ensure-postgres.sh

check: tools ## gofmt, go vet, workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	.bin/workflowcheck ./workflows/...
	$(GO) run ./internal/tools/archgraph --check

test: services check ## run every test (unit, store, workflows, integration) with the race detector, then the cluster part
	$(GO) test -race -count=1 -timeout 25m $(PKGS)
	@$(MAKE) --no-print-directory test-cluster

# The part of the suite that runs again on the production-shaped Temporal cluster (the
# real server on PostgreSQL, 4 shards: scripts/temporal-cluster.sh), and the tests only a
# cluster has (TestCluster*).
CLUSTER_TESTS := TestCluster|TestFullSyncProducesExactRemoteStateInBatches|TestDirectoryChangesReachTheTargetWithinSeconds|TestTwoWorkersFullSyncAndBurstOfChanges|TestWorkerKilledThreeTimes
.PHONY: test-cluster
test-cluster: services tools ## the cluster part of `make test` alone (SCIMSYNC_TEMPORAL=cluster; TEMPORAL_ADDRESS=host:port uses a running server)
	SCIMSYNC_TEMPORAL=cluster $(GO) test -race -count=1 -timeout 15m -run '^($(CLUSTER_TESTS))' ./internal/testenv/ ./integration/

unit: ## run the tests that need no services
	$(GO) test -count=1 -short $(PKGS)

.PHONY: arch
arch: ## redraw the package picture of docs/architecture.md and check the layers
	$(GO) run ./internal/tools/archgraph

demo: ## run the whole system on embedded defaults (Temporal dev server + UI, PostgreSQL, a SCIM target, sample data, a full sync)
	@scripts/demo.sh

.PHONY: cluster
cluster: ## make demo on the production-shaped Temporal: the real server on PostgreSQL, 4 shards, and its Web UI (:8233)
	@SCIMSYNC_DEMO_TEMPORAL=cluster scripts/demo.sh

.PHONY: bench
bench: tools services ## end-to-end benchmark S1-S5 at 10k users (ARGS="--scenarios S6": 100k users; "--small": CI size; "--repeat 2"); table + bench-results/*.json
	$(GO) run ./bench --json bench-results/bench-$$(date +%Y%m%d-%H%M%S).json $(ARGS)

.PHONY: reliability
RELIABILITY_TESTS := TestFullSyncConvergesThroughFaults|TestMemberWhoseWriteResultWasLostJoinsItsGroup|TestTwoWorkersFullSyncAndBurstOfChanges|TestWorkerKilledThreeTimes|TestTemporalRestartedMidSync|TestPostgresRestartedMidSync|TestChangesWrittenWithoutWorkerAreDelivered|TestSecretsNeverLeave|TestPayloadCodecEncryptsHistory|TestDemoHistoriesHoldNoEmailInClear|TestDirectDeprovisionsStopAtTheThreshold|TestFullSyncWaitsForATargetThatIsDown|TestTwoInstallationsInOneNamespace|TestBad|FuzzTargetAnswers
reliability: tools services ## reliability and security tests at full size (2,000 users, 100 groups; about 10 minutes); see docs/reliability.md
	@set -o pipefail; log=$${TMPDIR:-/tmp}/scimsync-reliability.log; \
	SCIMSYNC_RELIABILITY_FULL=1 $(GO) test -count=1 -timeout 90m -v -run '$(RELIABILITY_TESTS)' ./integration/ 2>&1 | tee $$log | grep --line-buffered -E '^(--- |ok|FAIL|PASS)|FIGURES|_test.go:'; \
	status=$$?; echo "full log: $$log"; exit $$status
