# The two commands of the README are `make dev-up` and `make test`; the rest are parts of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every target runs the machine's node when it is new enough (tools/stack/node.env),
# else the project's own under .tools/node, which `deps` installs (tools/stack/ensure-node.sh).
# Said once per make run, here; ensure-node.sh then says only what it fetches.
NODE_BIN_DIR := $(shell tools/stack/ensure-node.sh --bin-dir)
ifneq ($(NODE_BIN_DIR),)
export PATH := $(NODE_BIN_DIR):$(PATH)
export WSCHAT_NODE_ANNOUNCED := 1
$(info $(shell tools/stack/ensure-node.sh --announce))
endif

.PHONY: help deps test-deps build lint typecheck test test-mutation test-containers loadtest ci-stack dev-up dev-down status promote check-scripts check-prometheus demo docker-up docker-down docker-promote

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## Node >= 22 (the machine's, else .tools/node), node modules, redis-server and nginx when missing
	@tools/stack/install-deps.sh

test-deps: ## deps, plus what the tests check with: chromium, python3-websockets, iptables, shellcheck, prometheus, a Compose renderer
	@tools/stack/install-deps.sh --test

build: deps ## Compile TypeScript to dist/
	npm run build

lint: deps ## ESLint (type-aware)
	npm run lint

typecheck: deps ## tsc --noEmit
	npm run typecheck

check-scripts: ## shellcheck every shell script (fails naming shellcheck when it is absent: make test-deps installs it)
	@command -v shellcheck >/dev/null || { echo "check-scripts: shellcheck is not installed (make test-deps installs it)" >&2; exit 1; }
	@shellcheck -x tools/*.sh tools/*/*.sh nginx/compose/*.sh redis/*.sh deploy/images/*.sh .ci/run && echo "shellcheck: ok"

check-prometheus: ## promtool check config (as the stack renders it), check rules, test rules (fails naming promtool when it is absent)
	@tools/stack/check-prometheus.sh

test: test-deps lint typecheck check-scripts check-prometheus ## Everything CI runs: lint, typecheck, scripts, alert rules, then the mocha suite against real Redis, Nginx and Chromium
	npm test

test-mutation: deps ## Mutation testing of the unit tier (StrykerJS, incremental from the checked-in results); fails under the score floors (docs/mutation-testing.md)
	npm run test:mutation

test-containers: deps ## The container path for real (Docker, or podman as root): image, Compose stack, release under traffic
	npm run test:containers

loadtest: deps ## Load test the running stack (make dev-up first): 5,000 sockets through Nginx; ARGS="--sockets 20000 ..."; ARGS="... --reference --repeat 3" compares with the fair ceiling (docs/loadtest.md; builds dist/ only when a source changed)
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

demo: deps ## Film the page through a blue/green release and Prometheus's graph into docs/demo.gif (a stack of its own; docs/demo.md)
	@tools/demo.sh

docker-up: ## Compose stack with Docker or podman (tools/compose/compose-lib.sh): redis, nginx_proxy on 127.0.0.1:8000, the live colour x2
	@tools/compose/compose-up.sh

docker-down: ## Remove the Compose stack whole: containers, network, Redis volume
	@tools/compose/compose-down.sh

docker-promote: ## Compose blue/green release (or COLOUR=blue|green)
	@tools/compose/compose-promote.sh $(COLOUR)
