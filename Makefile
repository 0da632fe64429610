# AgentMeter. `make up` runs the whole system locally; `make test` runs every test.
# Every target runs with Node 24 first on PATH (installed into .local/node when the machine's is older).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

NODE_BIN := $(shell deploy/local/node.sh)
export PATH := $(NODE_BIN):$(PATH)

export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agentmeter
export REDIS_URL ?= redis://127.0.0.1:6379
export KAFKA_BROKERS ?= 127.0.0.1:9092
export KAFKA_PARTITIONS ?= 3

# Local secrets (API token signing, internal service tokens, the alert encryption key, OTLP tokens, the key
# of identifier pseudonyms), made once and kept in .local (never committed).
SECRETS := .local/secrets.env
$(SECRETS):
	@mkdir -p .local && umask 077 && rand() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n'; } && { \
	  echo "AUTH_JWT_SECRET=$$(rand)"; echo "COST_CAP_API_TOKEN=$$(rand)"; echo "ALERT_API_TOKEN=$$(rand)"; \
	  echo "ALERT_ENCRYPTION_KEY=$$(head -c 32 /dev/urandom | base64)"; echo "OTLP_TOKENS=demo42-tenant-1=$$(rand),demo42-tenant-2=$$(rand),demo42-tenant-3=$$(rand)"; \
	  echo "PSEUDONYM_KEY=$$(rand)"; } > $@
-include $(SECRETS)
# A secrets file made before PSEUDONYM_KEY existed gets one (kept from then on: a new key renames every user).
ifneq ($(wildcard $(SECRETS)),)
ifndef PSEUDONYM_KEY
PSEUDONYM_KEY := $(shell umask 077 && k=$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n') && echo "PSEUDONYM_KEY=$$k" >> $(SECRETS) && echo $$k)
endif
endif
export AUTH_JWT_SECRET COST_CAP_API_TOKEN ALERT_API_TOKEN ALERT_ENCRYPTION_KEY OTLP_TOKENS PSEUDONYM_KEY

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The console (web/) is its own package with its own lock file and node_modules (docs/console.md).
web/node_modules/.installed: web/package.json web/package-lock.json
	npm --prefix web ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: install
install: node_modules/.installed web/node_modules/.installed ## install npm dependencies

.PHONY: build
build: node_modules/.installed web/node_modules/.installed ## compile every service and tool into dist/, the console into web/dist/ (running services use their own copy)
	npm run --silent build

# The tools (migrate, token, demo, reprice, schemas) alone, into dist/tools: the helper targets never rebuild the
# services' dist/ folders (deploy/local/services.sh runs each service from a copy taken when it starts).
.PHONY: build-tools
build-tools: node_modules/.installed
	npx nest build tools

.PHONY: infra
infra: kcat ## start PostgreSQL, Redis and Kafka (local, no Docker) and create topics
	deploy/local/datastores.sh
	deploy/local/kafka/start.sh
	deploy/local/kafka/topics.sh

.PHONY: migrate
migrate: build-tools ## create the database if needed and apply migrations
	node dist/tools/tools/src/migrate.js

.PHONY: schemas
schemas: build-tools ## regenerate the committed JSON Schemas from the zod contracts
	node dist/tools/tools/src/schemas.js libs/contracts/schemas docs/events.md
	npx prettier --log-level warn --write libs/contracts/schemas

.PHONY: up
up: $(SECRETS) infra build migrate ## start everything (infra, migrations, services) and publish the demo workload
	deploy/local/services.sh start
	node dist/tools/tools/src/demo.js
	@run=$$(node -e 'const t=require("./.local/demo/ground-truth.json"); const r=t.runs.find(r=>r.status==="succeeded"); console.log(r.tenant_id+" "+r.run_id)'); \
	 set -- $$run; token=$$(node dist/tools/tools/src/token.js op $$1); \
	 link=$$(node dist/query/services/query/src/console/sign-in-link.js http://127.0.0.1:3000 owner,op $$1 demo-user); \
	 echo; echo "AgentMeter is up: query API http://127.0.0.1:3000 (OpenAPI at /docs), ingest :3001, cost-cap :3002, alert :3003"; \
	 echo; echo "Console: http://127.0.0.1:3000/runs/$$2"; \
	 echo "One-click sign-in as a demo Owner+OP (single use, 15 minutes; \`make sign-in-link\` prints another):"; \
	 echo "  $$link"; \
	 echo "Logs: .local/run/*.log. Try:"; echo; \
	 echo "  curl -s -H \"Authorization: Bearer $$token\" http://127.0.0.1:3000/runs/$$2/metrics"; echo

# `make up OBS=1` also starts the observability stack (docker-compose.observability.yml, docs/observability.md)
# before the services and points them at its collector. Without a Docker engine it says so and carries on: the
# services still serve /metrics and export no traces.
OBS_OTEL_HTTP_PORT ?= 4318
ifeq ($(OBS),1)
OBS_DOCKER := $(shell timeout 10 docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 && echo yes)
up: obs-up
ifeq ($(OBS_DOCKER),yes)
up: export OTEL_EXPORTER_OTLP_ENDPOINT ?= http://127.0.0.1:$(OBS_OTEL_HTTP_PORT)
endif
endif

.PHONY: obs-up
obs-up: ## start the observability stack when a Docker engine runs (part of `make up OBS=1`)
	@if [[ "$(OBS_DOCKER)" == yes ]] || { timeout 10 docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }; then \
	   docker compose -f docker-compose.observability.yml up -d; \
	   echo "[obs] Grafana http://127.0.0.1:$${OBS_GRAFANA_PORT:-3300}, Prometheus :$${OBS_PROMETHEUS_PORT:-9091}," \
	     "Tempo :$${OBS_TEMPO_HTTP_PORT:-3200}, Alertmanager :$${OBS_ALERTMANAGER_PORT:-9094}, OTLP :$(OBS_OTEL_HTTP_PORT)"; \
	 else \
	   echo "[obs] no Docker engine with Compose v2 here: not starting the observability stack (services still serve /metrics)"; \
	 fi

# kcat (librdkafka) publishes with every codec in the codec tests, as producers outside this repository do.
.PHONY: kcat
kcat: ## install kcat (Debian package kcat) when missing, as root
	@command -v kcat >/dev/null || { \
	   [[ "$$(id -u)" == 0 ]] || { echo "[kafka] kcat is missing: sudo apt-get install -y kcat (Debian), or put it on PATH" >&2; exit 1; }; \
	   echo "[kafka] installing kcat with apt-get (Debian package kcat)"; \
	   DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat >/dev/null; \
	 }

# Only promtool is wanted from the prometheus package: under systemd, the server it starts is stopped again.
.PHONY: obs-check
obs-check: ## promtool: check the Prometheus config and unit-test the alert rules (installs promtool as root)
	@command -v promtool >/dev/null || { \
	   [[ "$$(id -u)" == 0 ]] || { echo "[obs] promtool is missing: sudo apt-get install -y prometheus (Debian), or put it on PATH" >&2; exit 1; }; \
	   echo "[obs] installing promtool with apt-get (Debian package prometheus)"; \
	   DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	   if [[ -d /run/systemd/system ]]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi; \
	 }
	promtool check config deploy/observability/prometheus.yml
	promtool test rules deploy/observability/rules/agentmeter.rules.test.yml

.PHONY: down
down: ## stop what `make up` started
	deploy/local/services.sh stop
	deploy/local/kafka/stop.sh

.PHONY: demo
demo: build-tools ## publish the demo workload again (duplicates change nothing)
	node dist/tools/tools/src/demo.js

.PHONY: sign-in-link
sign-in-link: $(SECRETS) build ## print a one-click console sign-in link: make sign-in-link ROLES=owner,op TENANT=demo42-tenant-1
	@node dist/query/services/query/src/console/sign-in-link.js http://127.0.0.1:$${PORT:-3000} $(or $(ROLES),owner,op) \
	  $(or $(TENANT),$$(node -e 'console.log(require("./.local/demo/ground-truth.json").runs[0].tenant_id)')) demo-user

.PHONY: token
token: $(SECRETS) build-tools ## print an API token: make token ROLE=op TENANT=demo42-tenant-1
	@node dist/tools/tools/src/token.js $(or $(ROLE),op) $(or $(TENANT),demo42-tenant-1)

.PHONY: reprice
reprice: build-tools ## reprice calls: make reprice FROM=2026-11-01 TO=2026-11-02 ACTOR=me REASON=... [MODEL=] [TENANT=]
	node dist/tools/tools/src/reprice.js --from '$(FROM)' --to '$(TO)' --actor '$(ACTOR)' --reason '$(REASON)' \
	  $(if $(MODEL),--model '$(MODEL)') $(if $(TENANT),--tenant '$(TENANT)')

.PHONY: lint
lint: node_modules/.installed ## eslint and prettier
	npx eslint . --max-warnings 0
	npx prettier --check . --log-level warn

.PHONY: typecheck
typecheck: node_modules/.installed web/node_modules/.installed ## tsc over the whole repository and the browser tests (the console's own: in make build, after its API types)
	npx tsc -p tsconfig.json --noEmit
	cd web && npx tsc -p e2e/tsconfig.json

.PHONY: test
test: lint typecheck obs-check chromium build infra ## lint, typecheck, unit, integration, end-to-end and browser tests
	npx jest --selectProjects unit
	# --forceExit: a test whose teardown failed (a Kafka client left connecting) must not keep the run alive
	# after its report; every suite stops its own clients and services (docs/decisions.md).
	npx jest --selectProjects integration e2e --runInBand --forceExit
	cd web && npx playwright test -c e2e/playwright.config.ts

# The console's browser tests drive Debian's Chromium (Playwright's own browser download cannot work on
# these machines); installed as root when missing, like promtool.
.PHONY: chromium
chromium: ## Debian's Chromium for the browser tests (installs it as root when missing)
	@command -v chromium >/dev/null || { \
	   [[ "$$(id -u)" == 0 ]] || { echo "[web] chromium is missing: sudo apt-get install -y chromium (Debian)" >&2; exit 1; }; \
	   echo "[web] installing chromium with apt-get (Debian package chromium)"; \
	   DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	 }

.PHONY: test-web
test-web: chromium build infra ## the console's browser tests (Playwright, Chromium) against ingest and query from dist/; screenshots into docs/console/
	cd web && npx playwright test -c e2e/playwright.config.ts

.PHONY: test-unit
test-unit: node_modules/.installed ## unit tests only (no IO)
	npx jest --selectProjects unit

.PHONY: bench
bench: node_modules/.installed infra ## benchmarks against same-run baselines (BENCH=ingest|admission|query|console: one); results go to docs/benchmarks.md
	bench/run.sh $(BENCH)

.PHONY: clean
clean: ## remove build output (keeps .local: Node, Kafka, data)
	rm -rf dist coverage
