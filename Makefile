# incidentd: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
PKGS    := ./...
# -race needs cgo and a C compiler; without them the tests still run, unraced.
RACE    := $(shell [ "$$($(GO) env CGO_ENABLED)" = "1" ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)
FUZZTIME ?= 20000x

.PHONY: run test lint fuzz bench load mutate mutate-fast mutate-ci generate clients graphiql-assets check-generated build clean

## run: start the server on 127.0.0.1:8080 with the embedded SQLite store under ./data
run:
	$(GO) run ./cmd/incidentd serve

## test: the whole suite (SQLite always; PostgreSQL when TEST_DATABASE_URL is set), plus a short fuzz run
test:
	@[ -n "$$TEST_DATABASE_URL" ] || echo "make test: TEST_DATABASE_URL is not set: the PostgreSQL variants are skipped, SQLite runs (see README)"
	$(GO) vet $(PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=20000x
	$(GO) test $(RACE) -count=1 -timeout 15m $(PKGS)

## lint: go vet and staticcheck (pinned; fetched through the Go module proxy, outside go.mod)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## fuzz: run each fuzz target for FUZZTIME (an execution count such as 20000x: a duration can end mid-baseline on a busy machine and fail with "context deadline exceeded")
fuzz:
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzDecodeCreate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzDecodePatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzParseIncidentQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./model -run '^$$' -fuzz '^FuzzDecodeCursor$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzDecodeReport$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzDecodeCatalogue$$' -fuzztime $(FUZZTIME)
	$(GO) test ./auth -run '^$$' -fuzz '^FuzzVerifyHS256$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the hot paths (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## mutate: mutation testing (gremlins, pinned, outside go.mod) of model, auth and the store's rules; slow (about an hour on 2 cores), not part of `make test`
GREMLINS ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE   := $(GO) run $(GREMLINS) unleash --workers 1 --timeout-coefficient 20 --output-statuses lt
# The store's rules: the files deciding counts, resume positions, maintenance
# and monitoring decisions (the rest is SQL plumbing its tests reach anyway).
MUTATE_STORE_RULES ?= counts|position|maintenance|ingest
MUTATE_STORE_SKIP  := $(shell ls store/*.go | grep -v _test.go | grep -vE '/($(MUTATE_STORE_RULES))\.go$$' | sed 's|^store/||; s|\.go$$|\\.go|' | paste -sd'|')
mutate:
	$(MUTATE) ./model
	$(MUTATE) ./auth
	$(MUTATE) -E '(^|/)($(MUTATE_STORE_SKIP))$$' ./store

## mutate-fast: the model package alone (about 11 minutes on 2 cores), failing below MUTATE_MIN_EFFICACY
mutate-fast:
	$(MUTATE) --threshold-efficacy $(MUTATE_MIN_EFFICACY) ./model
MUTATE_MIN_EFFICACY ?= 90

## mutate-ci: the incident lifecycle and monitoring decision rules (model/incident.go, model/ingest.go; a few minutes), failing below MUTATE_MIN_EFFICACY; CI runs it
MUTATE_CI_RULES ?= incident|ingest
MUTATE_CI_SKIP  := $(shell ls model/*.go | grep -v _test.go | grep -vE '/($(MUTATE_CI_RULES))\.go$$' | sed 's|^model/||; s|\.go$$|\\.go|' | paste -sd'|')
mutate-ci:
	$(MUTATE) --threshold-efficacy $(MUTATE_MIN_EFFICACY) -E '(^|/)($(MUTATE_CI_SKIP))$$' ./model

## load: drive a running server with cmd/loadgen (LOADGEN_URL, LOADGEN_KEY; see README)
load:
	$(GO) run ./cmd/loadgen $(LOADGEN_ARGS)

## generate: regenerate the committed generated code: gqlgen's from graph/*.graphqls, and the REST clients from rest/openapi.yaml (make clients; the OpenAPI document itself is hand-written, spec-first)
generate: clients
	$(GO) tool gqlgen generate

## clients: regenerate the REST API clients from OPENAPI: Go (oapi-codegen, a go.mod tool) into clients/go/incidentd, TypeScript types (openapi-typescript, pinned in clients/ts/package-lock.json) into clients/ts/src/schema.d.ts; without node or clients/ts/node_modules the TypeScript types are skipped, said loudly (TS_REQUIRED=1 makes that an error, as CI should)
OPENAPI     ?= rest/openapi.yaml
TS_REQUIRED ?=
TSGEN       := clients/ts/node_modules/.bin/openapi-typescript
clients:
	$(GO) tool oapi-codegen -config clients/go/oapi-codegen.yaml $(OPENAPI)
	@if command -v node >/dev/null 2>&1 && [ -x $(TSGEN) ]; then \
		echo "$(TSGEN) $(OPENAPI) --output clients/ts/src/schema.d.ts --default-non-nullable false"; \
		$(TSGEN) $(OPENAPI) --output clients/ts/src/schema.d.ts --default-non-nullable false >/dev/null; \
	elif [ -n "$(TS_REQUIRED)" ]; then \
		echo "make clients: node or clients/ts/node_modules missing and TS_REQUIRED is set: run npm ci --prefix clients/ts" >&2; exit 1; \
	else \
		echo "make clients: node or clients/ts/node_modules missing: TypeScript client SKIPPED, clients/ts/src/schema.d.ts NOT regenerated (run npm ci --prefix clients/ts)" >&2; \
	fi

## graphiql-assets: re-fetch the explorer's embedded assets from the npm registry (pinned, integrity-checked)
graphiql-assets:
	sh graph/graphiql/fetch-assets.sh

## check-generated: fail if `make generate` would change committed files
check-generated: generate
	git diff --exit-code

build:
	$(GO) build -o bin/ ./cmd/...

clean:
	rm -rf bin data
