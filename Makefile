# make test: everything CI checks, from a fresh clone.
GO ?= go

.PHONY: test deps fmt vet race cover bench

test: deps fmt vet race cover

# The OS packages the tests drive (promtool, Prometheus, Chromium, Redis,
# Node.js): installed when missing (apt-get, as root); then the Node SDKs of
# test/node (npm ci from the lockfile). Quick when present. The list is in the
# script.
deps:
	@bash scripts/deps.sh

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 ./...

# The engine's statement coverage must stay at or above 90%.
cover:
	@$(GO) test -count=1 -coverprofile=.cover.out ./retry/ >/dev/null
	@$(GO) tool cover -func=.cover.out | awk '/^total:/ { sub("%","",$$3); print "retry/ coverage: " $$3 "%"; if ($$3 < 90) { print "below 90%"; exit 1 } }'
	@rm -f .cover.out

bench:
	BENCH_OUT=bench-results.json $(GO) test ./bench -run TestScenarios -count=1 -v
