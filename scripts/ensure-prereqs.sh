#!/usr/bin/env bash
# Installs what coord needs to build and run, if it is missing: libpq (headers and library),
# pkg-config (SwiftPM finds libpq through it) and the PostgreSQL server binaries (initdb, pg_ctl)
# for the embedded cluster. Debian/Ubuntu only; elsewhere it says what to install.
set -euo pipefail

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists libpq 2>/dev/null && [[ ! -f /usr/include/postgresql/libpq-fe.h ]]; then
    missing+=(libpq-dev)
fi
have_server=false
if [[ -n "${COORD_PG_BIN:-}" && -x "${COORD_PG_BIN}/pg_ctl" ]]; then have_server=true; fi
for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
        version=$(basename "$(dirname "$dir")")
        if [[ "$version" =~ ^[0-9]+$ ]] && (( version >= 15 )); then have_server=true; fi
    fi
done
$have_server || missing+=(postgresql)

if ((${#missing[@]} == 0)); then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "coord needs: ${missing[*]} (PostgreSQL 15 or newer). Install them with your package manager." >&2
    exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "installing ${missing[*]} needs root or sudo" >&2; exit 1; }
    sudo=(sudo)
fi
echo "Installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
