#!/usr/bin/env bash
# Checks the deploy/ files: the systemd unit verifies, shell scripts pass shellcheck, and the Dockerfile builds
# with the README's commands. Each check runs where its tool exists and says so when it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

if command -v systemd-analyze >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Point the unit at this build's binaries, which is where verify looks for them.
    bin="$PWD/.build/debug"
    sed -e "s|/usr/local/bin/|$bin/|g" deploy/systemd/coordd.service > "$tmp/coordd.service"
    if out=$(systemd-analyze verify "$tmp/coordd.service" 2>&1) && [[ -z "$out" ]]; then
        echo "deploy: systemd-analyze verify coordd.service: ok"
    else
        echo "deploy: systemd-analyze verify coordd.service failed:"; echo "$out"; status=1
    fi
else
    echo "deploy: systemd-analyze not available; unit not verified"
fi

if command -v shellcheck >/dev/null 2>&1; then
    if shellcheck scripts/*.sh .ci/run deploy/docker/*.sh deploy/ha/*.sh; then echo "deploy: shellcheck: ok"; else status=1; fi
else
    echo "deploy: shellcheck not available; scripts not checked"
fi

# nginx: the shipped config in a real nginx (scripts/check-nginx.sh). Missing tools fail under make test
# (COORD_REQUIRE_TOOLS=1, which installs them).
set +e
scripts/check-nginx.sh
rc=$?
set -e
if ((rc == 1)); then status=1
elif ((rc == 2)); then
    if [[ "${COORD_REQUIRE_TOOLS:-}" == "1" ]]; then status=1; else echo "deploy: nginx checks skipped"; fi
fi
if command -v bash >/dev/null && [[ -x deploy/docker/initdb-roles.sh ]]; then bash -n deploy/docker/initdb-roles.sh || status=1; fi

# Every build command of the Dockerfile (the line after a '# README:' marker) must be one the README gives;
# in CI (CI=true, or COORD_RUN_BUILD_STEPS=1) each is also run here, so the image's build steps are known to work.
while IFS= read -r cmd; do
    if grep -qF -- "$cmd" README.md; then
        echo "deploy: Dockerfile step also in README: $cmd"
    else
        echo "deploy: Dockerfile step missing from README: $cmd"; status=1
    fi
    if [[ "${CI:-}" == "true" || "${COORD_RUN_BUILD_STEPS:-}" == "1" ]]; then
        echo "deploy: running: $cmd"
        if ! bash -c "$cmd" >/dev/null; then echo "deploy: step failed: $cmd"; status=1; fi
    fi
done < <(grep -A1 '^# README:' deploy/docker/Dockerfile | grep '^RUN ' | sed 's/^RUN //')
exit $status
