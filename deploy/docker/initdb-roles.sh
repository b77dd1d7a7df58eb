#!/usr/bin/env bash
# Run by the postgres image on first start (/docker-entrypoint-initdb.d): the roles of deploy/postgres/roles.sql,
# with the passwords from the environment as psql variables (they never appear in a file or a process list).
# The grants come later, from `coordctl migrate --app-role ... --readonly-role ...` once the tables exist.
set -euo pipefail
roles=${COORD_ROLES_SQL:-/coord/roles.sql}
args=(-v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-coord}")
if [[ -n "${COORD_APP_PASSWORD:-}" ]]; then args+=(-v "app_password=$COORD_APP_PASSWORD"); fi
if [[ -n "${COORD_READONLY_PASSWORD:-}" ]]; then args+=(-v "readonly_password=$COORD_READONLY_PASSWORD"); fi
psql "${args[@]}" -f "$roles"
