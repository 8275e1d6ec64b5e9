# The two commands of the README are `make dev-up` and `make test`; the rest are parts of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help deps test-deps build lint typecheck test test-containers loadtest ci-stack dev-up dev-down status promote check-scripts check-prometheus docker-up docker-down docker-promote

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## Install node modules and redis-server when missing
	@tools/stack/install-deps.sh

test-deps: ## deps, plus Debian's chromium for the page's browser test (tests/page.e2e.test.ts)
	@tools/stack/install-deps.sh --test

build: deps ## Compile TypeScript to dist/
	npm run build

lint: deps ## ESLint (type-aware)
	npm run lint

typecheck: deps ## tsc --noEmit
	npm run typecheck

check-scripts: ## shellcheck every shell script (skipped when shellcheck is absent)
	@if command -v shellcheck >/dev/null; then shellcheck -x tools/*.sh tools/*/*.sh nginx/compose/*.sh redis/*.sh deploy/images/*.sh .ci/run && echo "shellcheck: ok"; \
	else echo "shellcheck not installed: skipped (apt-get install shellcheck)"; fi

check-prometheus: ## promtool check config (as the stack renders it), check rules, test rules (skipped when promtool is absent)
	@tools/stack/check-prometheus.sh

test: test-deps lint typecheck check-scripts check-prometheus ## Everything CI runs: lint, typecheck, scripts, alert rules, then the mocha suite against real Redis, Nginx and Chromium
	npm test

test-containers: ## The container path for real (npm ci first; Docker, or podman as root): image, Compose stack, release under traffic
	npm run test:containers

loadtest: deps ## Load test the running stack (make dev-up first): 5,000 sockets through Nginx; ARGS="--sockets 20000 ..."; ARGS="... --reference --repeat 3" compares with the fair ceiling (README, "Load test"; builds dist/ only when a source changed)
	@tools/stack/build-dist.sh
	node dist/tools/loadtest.js $(ARGS)

ci-stack: deps ## CI's stack check: dev-up in .run/ci, monitor.sh for 20 s, logs to reports/ci-stack, dev-down
	@mkdir -p reports && tools/stack/ci-stack.sh

dev-up: deps ## Start the stack: Redis, Nginx on 127.0.0.1:8000, the live colour (2 replicas; blue at first); logs in .run/logs
	@tools/dev-up.sh

dev-down: ## Stop everything dev-up and promote started, and nothing else
	@tools/dev-down.sh

status: ## Each process of the stack: state, colour, readiness, connections
	@tools/status.sh

promote: deps ## Blue/green release to the colour that is not live (or COLOUR=blue|green)
	@tools/promote.sh $(COLOUR)

docker-up: ## Compose stack with Docker or podman (tools/compose/compose-lib.sh): redis, nginx_proxy on 127.0.0.1:8000, the live colour x2
	@tools/compose/compose-up.sh

docker-down: ## Remove the Compose stack whole: containers, network, Redis volume
	@tools/compose/compose-down.sh

docker-promote: ## Compose blue/green release (or COLOUR=blue|green)
	@tools/compose/compose-promote.sh $(COLOUR)
