#!/usr/bin/env bash
# Sets up one machine of coord's three-machine PostgreSQL formation with pg_auto_failover (docs/OPERATIONS.md,
# "High availability"). Run as root on each machine, the monitor first:
#
#   deploy/ha/pg-auto-failover.sh monitor  MONITOR_HOST
#   deploy/ha/pg-auto-failover.sh node     NODE_HOST MONITOR_HOST     (on db-a, then on db-b)
#
# Each step creates the instance under /var/lib/postgresql/coord-ha (as the postgres user), with TLS from the
# machine's certificate (/etc/coord/tls/{server.crt,server.key,ca.crt}, verify-full) and scram-sha-256
# passwords, installs a systemd unit for its keeper (`pg_autoctl show systemd`) and starts it. The first node
# becomes the primary; the second clones it (pg_basebackup) and becomes its synchronous standby.
# Needs: postgresql-15 and postgresql-15-auto-failover (Debian). Passwords are read from /etc/coord/ha.env
# (PGAF_MONITOR_PASSWORD, PGAF_REPLICATION_PASSWORD), mode 0600. The monitor's goes to ~postgres/.pgpass and a psql
# variable, never a command line; the replication one only to `pg_autoctl config set`, which takes it no other way.
set -euo pipefail

role=${1:-}
host=${2:-}
[[ -n $role && -n $host ]] || { sed -n '2,14p' "$0" >&2; exit 64; }
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 77; }
# shellcheck source=/dev/null
source /etc/coord/ha.env
pgdata=/var/lib/postgresql/coord-ha
tls=(--ssl-ca-file /etc/coord/tls/ca.crt --server-cert /etc/coord/tls/server.crt --server-key /etc/coord/tls/server.key --ssl-mode verify-full)
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin | sort -V | tail -1)
as_pg() { runuser -u postgres -- env PATH="$bin:/usr/bin:/bin" "$@"; }

case $role in
monitor)
    as_pg pg_autoctl create monitor --pgdata "$pgdata" --hostname "$host" --auth scram-sha-256 "${tls[@]}"
    # The monitor's health checks: the defaults (5 s period, 20 s to call a node unhealthy, 30 s for the old primary
    # to demote itself) fail over in about 30-40 s and never on a short network blip. See docs/OPERATIONS.md before
    # shortening them; primary_demote_timeout must stay above the keepers' network_partition_timeout (20 s).
    # The password travels in the environment and a psql variable (quoted by psql), never in a command line or SQL text.
    PGAF_MONITOR_PASSWORD="$PGAF_MONITOR_PASSWORD" as_pg psql -X -d pg_auto_failover -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
\getenv pw PGAF_MONITOR_PASSWORD
ALTER USER autoctl_node PASSWORD :'pw';
SQL
    ;;
node)
    monitor_host=${3:?MONITOR_HOST}
    # The monitor's password goes to the postgres user's ~/.pgpass (0600), so the monitor URL carries none.
    pgpass=/var/lib/postgresql/.pgpass
    touch "$pgpass" && chown postgres: "$pgpass" && chmod 0600 "$pgpass"
    grep -q "^$monitor_host:5432:pg_auto_failover:autoctl_node:" "$pgpass" \
        || printf '%s:5432:pg_auto_failover:autoctl_node:%s\n' "$monitor_host" "$PGAF_MONITOR_PASSWORD" >>"$pgpass"
    monitor="postgres://autoctl_node@$monitor_host:5432/pg_auto_failover?sslmode=verify-full&sslrootcert=/etc/coord/tls/ca.crt"
    as_pg pg_autoctl create postgres --pgdata "$pgdata" --hostname "$host" --dbname coord --auth scram-sha-256 \
        --monitor "$monitor" --replication-quorum true --candidate-priority 50 "${tls[@]}"
    as_pg pg_autoctl config set --pgdata "$pgdata" replication.password "$PGAF_REPLICATION_PASSWORD"
    # coord's settings on every node (the standby takes them over when promoted): deploy/postgres/postgresql.conf.sample,
    # plus what replication needs from them.
    cat >>"$pgdata/postgresql-coord.conf" <<'EOF'
# coord on pg_auto_failover: an acknowledged commit is flushed on the synchronous standby too.
synchronous_commit = on
# Queries on the standby (COORD_READ_DATABASE_URL, BI tools) hold back the vacuum they would conflict with,
# instead of being cancelled.
hot_standby_feedback = on
# WAL archiving on whichever node is primary: continuous backups (docs/OPERATIONS.md, "Backup").
archive_mode = on
archive_command = 'test ! -f /var/backups/coord/wal/%f && cp %p /var/backups/coord/wal/%f'
EOF
    grep -q "include_if_exists = 'postgresql-coord.conf'" "$pgdata/postgresql.conf" \
        || echo "include_if_exists = 'postgresql-coord.conf'" >>"$pgdata/postgresql.conf"
    ;;
*)
    sed -n '2,14p' "$0" >&2
    exit 64
    ;;
esac

as_pg pg_autoctl -q show systemd --pgdata "$pgdata" >/etc/systemd/system/pgautofailover.service
systemctl daemon-reload
systemctl enable --now pgautofailover.service
echo "pg_auto_failover $role on $host: started (pg_autoctl show state --pgdata $pgdata)"
