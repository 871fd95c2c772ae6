# Entry points: `make run` runs the main job on an embedded PostgreSQL,
# `make test` runs every test, `make bench` runs the benchmark (pass options
# in BENCH_ARGS, such as BENCH_ARGS="--quick --scenario latency").
#
# Each target first installs what it needs (Debian packages, the extension)
# when it is missing, so both work on a fresh Debian 12 machine with the Swift
# toolchain. Installing packages and the extension needs root; as another user
# the commands run through sudo.

SHELL := /bin/bash
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
SWIFT_BUILD_FLAGS ?= -c release
DOCS_DIR ?= /usr/share/doc

# Debian packages and a file each one installs, to tell whether it is present.
PACKAGES := postgresql-15:/usr/lib/postgresql/15/bin/postgres \
            postgresql-server-dev-15:/usr/include/postgresql/15/server/postgres.h \
            libpq-dev:/usr/include/postgresql/libpq-fe.h \
            postgresql-client-15:/usr/bin/psql \
            python3-psycopg2:/usr/lib/python3/dist-packages/psycopg2/__init__.py

.PHONY: all deps extension install-extension build run test test-sql test-any-language test-swift bench clean

all: build

deps:
	@missing=""; \
	for entry in $(PACKAGES); do \
	  [ -e "$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

extension: deps
	$(MAKE) -C extension PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

install-extension: extension
	$(SUDO) $(MAKE) -C extension PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install

build: install-extension
	swift build $(SWIFT_BUILD_FLAGS)

run: build
	.build/release/sluice-doc-indexer-demo --docs "$(DOCS_DIR)"

test: test-sql test-any-language test-swift

test-sql: install-extension
	PATH=/usr/lib/postgresql/15/bin:$$PATH scripts/with-postgres \
	  $(MAKE) -C extension PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config installcheck \
	  || { cat extension/test/regression.diffs 2>/dev/null; exit 1; }

# A worker written in Python with plain SQL calls, to keep the protocol
# usable from any language.
test-any-language: install-extension
	PATH=/usr/lib/postgresql/15/bin:$$PATH scripts/with-postgres /usr/bin/python3 Tests/AnyLanguage/python_worker_test.py

# One test at a time: several tests start worker processes, servers and
# timers, and on a 2-core machine running them side by side turns their
# deadlines into noise.
test-swift: install-extension
	PATH=/usr/lib/postgresql/15/bin:$$PATH swift test --no-parallel

bench: build
	.build/release/sluice-bench $(BENCH_ARGS)

clean:
	$(MAKE) -C extension clean
	rm -rf .build .sluice
