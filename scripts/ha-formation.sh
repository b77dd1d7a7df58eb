#!/usr/bin/env bash
# A pg_auto_failover formation on this machine, for `make test-ha` and for trying fail-over by hand:
# a monitor and two PostgreSQL nodes (a primary and its synchronous standby), each run by its own keeper
# (`pg_autoctl run`) in a process group of its own, so that killing that group is losing the machine.
#
#   scripts/ha-formation.sh up DIR PORT     monitor on PORT, nodes on PORT+1 and PORT+2 (127.0.0.1, trust, no TLS)
#   scripts/ha-formation.sh primary DIR     the port of the node that is primary now (nothing when there is none)
#   scripts/ha-formation.sh kill DIR NODE   SIGKILL node1's or node2's keeper and PostgreSQL: a lost machine
#   scripts/ha-formation.sh state DIR       pg_autoctl show state
#   scripts/ha-formation.sh down DIR        stop everything and remove DIR
#
# The timeouts are cut to seconds so that a test fails over quickly; deploy/ha/ has production values and says why.
# Needs pg_autoctl (Debian: postgresql-15-auto-failover) and root or the postgres user (the servers' sockets are in
# /var/run/postgresql).
set -euo pipefail

command=${1:-}
dir=${2:-}
[[ -n $command && -n $dir ]] || { sed -n '2,14p' "$0" >&2; exit 64; }

bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1)
export PATH="$bin:/usr/sbin:/usr/bin:/sbin:/bin"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    as_pg=(runuser -u postgres --)
elif [[ $(id -un) != postgres && $command == up ]]; then
    echo "ha-formation: run as root or as the postgres user (the servers' sockets go to /var/run/postgresql)" >&2
    exit 77
fi
# pg_autoctl keeps its configuration, state and pid files under the XDG directories: inside DIR, so that a
# formation leaves nothing behind and two of them never share a file.
xdg=(XDG_CONFIG_HOME="$dir/xdg/config" XDG_DATA_HOME="$dir/xdg/data" XDG_RUNTIME_DIR="$dir/xdg/run")
pg() { "${as_pg[@]}" env PATH="$PATH" "${xdg[@]}" "$@"; }

node_port() { cat "$dir/$1.port"; }
# SIGKILL a node's keeper group, then whatever still runs in its data directory: PostgreSQL's children each call
# setsid(), so the group does not hold them, and a background worker that misses its postmaster's death (the
# monitor's health check) would otherwise outlive the formation.
lose() {
    local name=$1 pgid p
    if [[ -f $dir/$name.pgid ]]; then
        pgid=$(cat "$dir/$name.pgid")
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    for p in /proc/[0-9]*; do
        case $(readlink "$p/cwd" 2>/dev/null) in
        "$dir/$name" | "$dir/$name/"* | "$dir/$name (deleted)") kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
        esac
    done
}
sql() { local port=$1; shift; psql -X -q -At -h 127.0.0.1 -p "$port" -U postgres "$@"; }

case $command in
up)
    port=${3:?PORT}
    command -v pg_autoctl >/dev/null || { echo "pg_autoctl is missing (apt-get install postgresql-15-auto-failover)" >&2; exit 69; }
    [[ ! -e $dir ]] || { echo "ha-formation: $dir exists (scripts/ha-formation.sh down $dir)" >&2; exit 1; }
    mkdir -p "$dir/xdg/run"
    chmod 700 "$dir/xdg/run"
    [[ ${#as_pg[@]} -eq 0 ]] || chown -R postgres "$dir"
    monitor="postgres://autoctl_node@127.0.0.1:$port/pg_auto_failover?sslmode=disable"
    start() {  # name, then pg_autoctl create arguments
        local name=$1; shift
        # setsid, exec'd in place: the keeper leads a process group of its own, whose id is the pid the shell wrote.
        # The whole job's descriptors go to the log: a caller reading this script's output gets its end.
        # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
        { pg sh -c 'echo $$ >"$0"; exec setsid pg_autoctl create "$@"' "$dir/$name.pgid" "$@" \
            --pgdata "$dir/$name" --hostname 127.0.0.1 --listen 127.0.0.1 --auth trust --no-ssl --run; } \
            </dev/null >"$dir/$name.log" 2>&1 &
    }
    wait_for() {  # seconds, description, command...
        local seconds=$1 what=$2; shift 2
        for ((i = 0; i < seconds * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
        echo "ha-formation: timed out waiting for $what" >&2
        tail -n 20 "$dir"/*.log >&2
        return 1
    }
    start monitor monitor --pgport "$port"
    echo "$port" >"$dir/monitor.port"
    wait_for 60 "the monitor" sql "$port" -d pg_auto_failover -c "SELECT 1 FROM pgautofailover.formation"
    # Seconds, not tens of seconds: a failed health check after 1 s, a node unhealthy after 2 s, and the old primary
    # given 4 s to demote itself (its keeper's network_partition_timeout, 3 s, comes first: never two primaries).
    sql "$port" -d pg_auto_failover \
        -c "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" \
        -c "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 2000" \
        -c "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 4000" \
        -c "SELECT pg_reload_conf()" >/dev/null
    for n in 1 2; do
        start "node$n" postgres --pgport $((port + n)) --dbname coord --monitor "$monitor" --name "node$n"
        echo $((port + n)) >"$dir/node$n.port"
        if [[ $n -eq 1 ]]; then
            wait_for 60 "node1 to accept writes" sql $((port + 1)) -d coord -c "SELECT 1 WHERE NOT pg_is_in_recovery()"
        fi
    done
    # The standby's base backup waits for a checkpoint; ask for one rather than wait for the next scheduled one.
    for ((i = 0; i < 120; i++)); do
        sql $((port + 1)) -d coord -c "CHECKPOINT" >/dev/null 2>&1 || true
        if [[ $(sql "$port" -d pg_auto_failover -c "SELECT string_agg(reportedstate::text, ',' ORDER BY nodeid) FROM pgautofailover.node" 2>/dev/null) == "primary,secondary" ]]; then break; fi
        sleep 1
        [[ $i -lt 119 ]] || { echo "ha-formation: timed out waiting for the standby" >&2; tail -n 20 "$dir"/*.log >&2; exit 1; }
    done
    for n in 1 2; do
        pg pg_autoctl config set --pgdata "$dir/node$n" timeout.network_partition_timeout 3 >/dev/null
    done
    sync_names=$(sql $((port + 1)) -d coord -c "SHOW synchronous_standby_names")
    [[ -n $sync_names ]] || { echo "ha-formation: the standby is not synchronous" >&2; pg pg_autoctl show state --pgdata "$dir/monitor" >&2; exit 1; }
    echo "formation up: primary 127.0.0.1:$((port + 1)), synchronous standby 127.0.0.1:$((port + 2)) ($sync_names)"
    ;;
primary)
    for n in 1 2; do
        [[ -f $dir/node$n.port ]] || continue
        p=$(node_port "node$n")
        if [[ $(sql "$p" -d coord -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null) == t ]]; then echo "$p"; exit 0; fi
    done
    ;;
kill)
    name=${3:?NODE}
    pgid=$(cat "$dir/$name.pgid")
    lose "$name"
    # A lost machine leaves nothing running.
    for ((i = 0; i < 50; i++)); do pgrep -g "$pgid" >/dev/null || break; sleep 0.1; done
    ;;
state)
    pg pg_autoctl show state --pgdata "$dir/monitor"
    ;;
down)
    for name in node1 node2 monitor; do lose "$name"; done
    sleep 0.5
    rm -rf "$dir"
    ;;
*)
    sed -n '2,14p' "$0" >&2
    exit 64
    ;;
esac
