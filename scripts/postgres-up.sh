#!/usr/bin/env bash
# Install (if needed) and start Debian's PostgreSQL on loopback for the test suite, then print
# the admin URL the tests use as CRM_TEST_POSTGRES_URL. Safe to run more than once.
set -euo pipefail
PORT="${CRM_PG_PORT:-5432}"
PASSWORD="${CRM_PG_PASSWORD:-crm-test-password}"

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql postgresql-client >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$VERSION main$"; then
  pg_createcluster "$VERSION" main -p "$PORT" >&2
fi
if ! pg_lsclusters -h | grep "^$VERSION main" | grep -q online; then
  pg_ctlcluster "$VERSION" main start >&2
fi
for _ in $(seq 1 30); do
  if su postgres -c "pg_isready -q -h 127.0.0.1 -p $PORT"; then break; fi
  sleep 1
done
su postgres -c "psql -q -p $PORT -c \"ALTER USER postgres PASSWORD '$PASSWORD'\"" >&2
echo "postgresql://postgres:$PASSWORD@127.0.0.1:$PORT/postgres"
