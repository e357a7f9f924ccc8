#!/usr/bin/env bash
# Starts (or stops) the real servers the tests talk to, on loopback, under .services/.
#   scripts/services.sh start   # prints `export …` lines for the tests' environment
#   scripts/services.sh stop
# PostgreSQL 15 from Debian's packages (see ../shared/INFRA.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="${OUTPOST_SERVICES_DIR:-/tmp/outpost-services-$(id -u)}"
pg_port="${OUTPOST_TEST_PG_PORT:-55432}"
pg_password="outpost-test-superuser"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

log() { printf '%s\n' "$*" >&2; }

start_postgres() {
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    log "installing PostgreSQL"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  local data="$state/postgres"
  mkdir -p "$state"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    chown postgres:postgres "$data"
    local pwfile
    pwfile="$(mktemp)"
    printf '%s\n' "$pg_password" > "$pwfile"
    chown postgres "$pwfile"
    # Local socket connections trust the OS user; TCP connections need a password, so the
    # wrong-password path is real.
    runuser -u postgres -- "$pg_bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale >/dev/null
    rm -f "$pwfile"
  fi
  if ! runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $data" start >&2
  fi
  echo "export OUTPOST_TEST_PG_HOST=127.0.0.1"
  echo "export OUTPOST_TEST_PG_PORT=$pg_port"
  echo "export OUTPOST_TEST_PG_SOCKET_DIR=$data"
  echo "export OUTPOST_TEST_PG_SUPERUSER=postgres"
  echo "export OUTPOST_TEST_PG_PASSWORD=$pg_password"
  echo "export OUTPOST_TEST_PG_BIN=$pg_bin"
}

# Stops the server and deletes its data: every test run starts from an empty cluster.
stop_postgres() {
  local data="$state/postgres"
  if [ -n "$pg_bin" ] && [ -f "$data/PG_VERSION" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
}

case "${1:-}" in
  start) start_postgres ;;
  stop) stop_postgres ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
