#!/usr/bin/env bash
# Installs the outside judges the test suite uses, if they are missing, and never anything the product needs to run:
#   Debian: python3-venv, python3-seccomp (the unit's syscall filter applied to the binaries), prometheus (promtool),
#           nginx-light (nginx -t on deploy/nginx), shellcheck, openssl (a throwaway certificate for nginx -t),
#           chromium and chromium-driver (the console's browser tests, over WebDriver),
#           postgresql-N-auto-failover (pg_autoctl: the fail-over manager of make test-ha)
#   PyPI, in a virtual environment at .build-tools/venv: libhxl (HXL exports), openapi-spec-validator and
#           schemathesis (the OpenAPI document and the API against it)
# Prints the virtual environment's python on stdout. Debian/Ubuntu only; elsewhere it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build-tools/venv

sudo=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi

missing=()
[[ -x /usr/bin/python3 ]] || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3-seccomp)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# pg_auto_failover for make test-ha, built for the newest PostgreSQL here (the one the tests run).
pg_major=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -1)
command -v pg_autoctl >/dev/null 2>&1 || [[ -z $pg_major ]] || missing+=("postgresql-$pg_major-auto-failover")

if ((${#missing[@]})); then
    if command -v apt-get >/dev/null 2>&1 && { [[ $(id -u) -eq 0 ]] || ((${#sudo[@]})); }; then
        echo "test tools: installing ${missing[*]} ..." >&2
        export DEBIAN_FRONTEND=noninteractive
        # Packages that ship a service (nginx, prometheus) must not start one on this machine.
        policy=/usr/sbin/policy-rc.d
        created_policy=false
        if [[ ! -e $policy ]]; then
            printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
            "${sudo[@]}" chmod +x "$policy"
            created_policy=true
        fi
        { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
            || echo "test tools: could not install ${missing[*]}" >&2
        if $created_policy; then "${sudo[@]}" rm -f "$policy"; fi
    else
        echo "test tools: missing ${missing[*]} (install them, or run as root on Debian/Ubuntu)" >&2
    fi
fi

if [[ ! -x $venv/bin/python ]]; then
    # System site packages: python3-seccomp comes from Debian.
    /usr/bin/python3 -m venv --system-site-packages "$venv" >&2 || python3 -m venv "$venv" >&2
fi
# schemathesis 3 breaks with Hypothesis past 6.131.14 ("'many' object has no attribute 'more'"): pinned below it.
check='import hxl, openapi_spec_validator, schemathesis, hypothesis; v = tuple(int(x) for x in hypothesis.__version__.split(".")[:3]); assert v <= (6, 131, 14)'
if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "test tools: installing libhxl, openapi-spec-validator, schemathesis from PyPI ..." >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check libhxl openapi-spec-validator 'schemathesis>=3.39,<4' 'hypothesis<=6.131.14' >&2 \
        || echo "test tools: could not install the PyPI tools" >&2
fi
echo "$PWD/$venv/bin/python"
