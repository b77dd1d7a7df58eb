# coord: two commands set everything up on a fresh Debian/Ubuntu machine with Swift.
#   make run   prerequisites, release build, embedded PostgreSQL, migrations, coordd
#   make test  prerequisites, the whole test suite on its own throwaway PostgreSQL

SWIFT ?= swift
RELEASE_BIN = .build/release
DEBUG_BIN = .build/debug

.PHONY: run test test-ha build release prereqs bench fault fuzz clean stop

prereqs:
	@scripts/ensure-prereqs.sh

build: prereqs
	$(SWIFT) build

release: prereqs
	$(SWIFT) build -c release

run: release
	$(RELEASE_BIN)/coordctl migrate
	$(RELEASE_BIN)/coordctl demo load
	@echo "Demo admin token (use as: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8080/v1/stock):"
	@$(RELEASE_BIN)/coordctl tokens create --role admin --subject demo-admin --personal-data 2>/dev/null
	exec $(RELEASE_BIN)/coordd

# At most TEST_WIDTH tests run at once: unbounded, the suite's start-up burst (dozens of coordd and their
# databases at once) keeps two cores busy for tens of seconds, and the whole run is slower, not faster.
TEST_WIDTH ?= 8

# The outside judges (libhxl, libseccomp, promtool, nginx, openapi-spec-validator, schemathesis) are installed by
# scripts/ensure-test-tools.sh; with COORD_REQUIRE_TOOLS=1 a missing one fails its test instead of skipping it.
test: prereqs
	scripts/ensure-test-tools.sh >/dev/null
	$(SWIFT) build --build-tests
	COORD_REQUIRE_TOOLS=1 $(SWIFT) test --skip-build --experimental-maximum-parallelization-width $(TEST_WIDTH)
	COORD_REQUIRE_TOOLS=1 scripts/check-deploy.sh
	FUZZ_OPT=-Onone scripts/fuzz.sh --seconds 10

# Streaming replication and fail-over (issue #22): a pg_auto_failover monitor, a primary and its synchronous standby
# on this machine (scripts/ha-formation.sh), two coordd on a multi-host URL, 32 writers; the primary's machine is
# lost mid-load. Needs root (or the postgres user) and pg_autoctl, which scripts/ensure-test-tools.sh installs.
test-ha: prereqs
	scripts/ensure-test-tools.sh >/dev/null
	$(SWIFT) build --build-tests
	COORD_HA=1 $(SWIFT) test --skip-build --filter HATests

# libFuzzer with the address sanitizer on the request decoder, JSON, percent-decoding, command bodies and import
# lines, FUZZ_SECONDS each (make test runs 10 s each, unoptimised); crashes are kept in Tests/Fuzz/crashes/.
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh --seconds $(FUZZ_SECONDS)

bench: release
	$(RELEASE_BIN)/coordctl bench append --writers 32 --events 20000

# The fault-injection test at length: SIGKILLs of coordd and immediate PostgreSQL stops under 32 writers for
# FAULT_SECONDS (make test runs it for 8).
FAULT_SECONDS ?= 120
fault: prereqs
	$(SWIFT) build --build-tests
	FAULT_SECONDS=$(FAULT_SECONDS) $(SWIFT) test --skip-build --filter FaultTests

stop:
	-$(RELEASE_BIN)/coordctl db stop

clean:
	rm -rf .build
