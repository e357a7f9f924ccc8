#!/usr/bin/env bash
# Starts (or stops) the real servers the tests talk to, on loopback, under .services/.
#   scripts/services.sh start   # prints `export …` lines for the tests' environment
#   scripts/services.sh stop
# PostgreSQL 15 and MariaDB 10.11 from Debian's packages (see ../shared/INFRA.md).
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
    # TLS: a self-signed certificate for 127.0.0.1, and a role that may only log in over
    # TLS, so the TLS paths (required, verified, refused) are tested for real.
    # A throwaway CA, and a server certificate it signs for 127.0.0.1 and localhost.
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=outpost-test-ca" \
      -keyout "$data/ca.key" -out "$data/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=outpost-test-postgres" \
      -keyout "$data/server.key" -out "$data/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$data/server.ext"
    openssl x509 -req -in "$data/server.csr" -CA "$data/ca.crt" -CAkey "$data/ca.key" -CAcreateserial \
      -days 7 -extfile "$data/server.ext" -out "$data/server.crt" >/dev/null 2>&1
    chown postgres:postgres "$data/server.key" "$data/server.crt"
    chmod 600 "$data/server.key"
    printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >> "$data/postgresql.conf"
    { printf 'hostnossl all outpost_tls_only 127.0.0.1/32 reject\n'
      printf 'hostssl all outpost_tls_only 127.0.0.1/32 scram-sha-256\n'
      cat "$data/pg_hba.conf"; } > "$data/pg_hba.conf.new"
    mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
    chown postgres:postgres "$data/pg_hba.conf"
  fi
  if ! runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $data" start >&2
  fi
  runuser -u postgres -- psql -X -q -h "$data" -p "$pg_port" -U postgres -d postgres -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outpost_tls_only') THEN CREATE ROLE outpost_tls_only LOGIN PASSWORD 'outpost-tls-only'; END IF; END \$\$;" >&2
  echo "export OUTPOST_TEST_PG_HOST=127.0.0.1"
  echo "export OUTPOST_TEST_PG_CA=$data/ca.crt"
  echo "export OUTPOST_TEST_PG_TLS_USER=outpost_tls_only"
  echo "export OUTPOST_TEST_PG_TLS_PASSWORD=outpost-tls-only"
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

my_port="${OUTPOST_TEST_MYSQL_PORT:-53306}"
my_password="outpost-test-admin"

start_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1; then
    log "installing MariaDB"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >&2
  fi
  local data="$state/mariadb"
  mkdir -p "$state"
  if [ ! -d "$data/mysql" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    chown mysql:mysql "$data"
    mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=normal \
      --skip-test-db >/dev/null 2>&1
  fi
  # TLS with the certificate the PostgreSQL server uses (signed by the same test CA).
  for f in ca.crt server.crt server.key; do
    [ -f "$data/$f" ] || install -o mysql -g mysql -m 600 "$state/postgres/$f" "$data/$f"
  done
  if ! mariadb-admin --socket="$data/s.sock" -uroot ping >/dev/null 2>&1; then
    nohup mariadbd --no-defaults --user=mysql --datadir="$data" --socket="$data/s.sock" \
      --ssl-ca="$data/ca.crt" --ssl-cert="$data/server.crt" --ssl-key="$data/server.key" \
      --pid-file="$data/mariadb.pid" --bind-address=127.0.0.1 --port="$my_port" \
      --log-error="$data/error.log" >/dev/null 2>&1 &
    for _ in $(seq 1 60); do
      mariadb-admin --socket="$data/s.sock" -uroot ping >/dev/null 2>&1 && break
      sleep 0.5
    done
    mariadb-admin --socket="$data/s.sock" -uroot ping >/dev/null 2>&1 || { log "MariaDB did not start; see $data/error.log"; exit 1; }
  fi
  # An administrator reachable over TCP with a password, for the tests' fixtures.
  mariadb --socket="$data/s.sock" -uroot -e "CREATE USER IF NOT EXISTS 'outpost_admin'@'127.0.0.1' IDENTIFIED BY '$my_password'; GRANT ALL ON *.* TO 'outpost_admin'@'127.0.0.1' WITH GRANT OPTION; CREATE USER IF NOT EXISTS 'outpost_tls_only'@'127.0.0.1' IDENTIFIED BY 'outpost-tls-only' REQUIRE SSL;"
  echo "export OUTPOST_TEST_MYSQL_HOST=127.0.0.1"
  echo "export OUTPOST_TEST_MYSQL_PORT=$my_port"
  echo "export OUTPOST_TEST_MYSQL_ADMIN=outpost_admin"
  echo "export OUTPOST_TEST_MYSQL_PASSWORD=$my_password"
}

stop_mariadb() {
  local data="$state/mariadb"
  if [ -S "$data/s.sock" ]; then
    mariadb-admin --socket="$data/s.sock" -uroot shutdown >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
}

case "${1:-}" in
  start) start_postgres; start_mariadb ;;
  stop) stop_postgres; stop_mariadb ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
