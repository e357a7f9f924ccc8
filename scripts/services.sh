#!/usr/bin/env bash
# Starts (or stops) the real servers the tests talk to, on loopback; their data, pid and log
# files live under $OUTPOST_SERVICES_DIR (default /tmp/outpost-services-$UID).
#   scripts/services.sh start   # prints `export …` lines for the tests' environment
#   scripts/services.sh stop
# PostgreSQL 15 and MariaDB 10.11 from Debian's packages, and three storage emulators
# installed into .tools/ by scripts/install-tools.sh: s3s-fs (S3, signature-checking),
# Azurite (Azure Blob) and fake-gcs-server (GCS); and fakesnow (Snowflake's driver protocol
# over DuckDB), installed the same way.
# Ports: OUTPOST_TEST_{PG,MYSQL,S3,AZURE,GCS,SNOWFLAKE}_PORT. `start` is idempotent; `stop` stops
# everything and deletes the data.
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

# --- storage emulators -------------------------------------------------------------------
# Each runs in the background under $state/<name>/ with a pid file and a log file there.

s3_port="${OUTPOST_TEST_S3_PORT:-59000}"
s3_access_key="outpost-test-access-key"
s3_secret_key="outpost-test-secret-key"
s3_region="us-east-1"
az_port="${OUTPOST_TEST_AZURE_PORT:-50010}"
az_account="devstoreaccount1"
# Azurite's well-known development account key (public, documented by Microsoft).
az_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
gcs_port="${OUTPOST_TEST_GCS_PORT:-54443}"
snowflake_port="${OUTPOST_TEST_SNOWFLAKE_PORT:-58443}"
bucket="outpost-test"
tools_bin=""

# pid_alive PIDFILE WORD: the process in PIDFILE runs and its command line contains WORD
# (a recycled pid or a zombie does not count).
pid_alive() {
  local pid cmd
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$2"* ]]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME WORD PORT CMD...: starts CMD in the background unless it already runs, then
# waits (60 s at most) until PORT answers HTTP. Fails loudly with the log's path.
launch() {
  local name="$1" word="$2" port="$3"
  shift 3
  local dir="$state/$name"
  local pidfile="$dir/$name.pid" logfile="$dir/$name.log"
  if ! pid_alive "$pidfile" "$word"; then
    if port_in_use "$port"; then
      log "$name: port $port on 127.0.0.1 is taken by another process"
      exit 1
    fi
    nohup "$@" >"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  local pid
  pid="$(cat "$pidfile")"
  for _ in $(seq 1 240); do
    # Only whether it still runs: its command line reads empty while nohup execs it.
    # A zombie (exited, not yet reaped) counts as exited.
    if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      log "$name exited while starting; see $logfile"
      exit 1
    fi
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" && return 0
    sleep 0.25
  done
  log "$name did not answer on 127.0.0.1:$port within 60 s; see $logfile"
  exit 1
}

# halt NAME WORD: stops the process in $state/NAME/NAME.pid (TERM, then KILL after 10 s).
halt() {
  local pidfile="$state/$1/$1.pid"
  pid_alive "$pidfile" "$2" || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    pid_alive "$pidfile" "$2" || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}

install_emulators() {
  [ -n "$tools_bin" ] || tools_bin="$("$root/scripts/install-tools.sh" emulators)"
}

# S3: s3s-fs serves a folder; each sub-folder is a bucket, each file below it an object.
start_s3s_fs() {
  install_emulators
  local data="$state/s3s-fs/data"
  mkdir -p "$data/$bucket"
  RUST_LOG=info launch s3s-fs s3s-fs "$s3_port" "$tools_bin/s3s-fs" --host 127.0.0.1 \
    --port "$s3_port" --access-key "$s3_access_key" --secret-key "$s3_secret_key" "$data"
  # A signed ListObjectsV2 proves the bucket and the credentials.
  python3 "$root/scripts/storage_request.py" s3 GET "http://127.0.0.1:$s3_port/$bucket?list-type=2" \
    --access-key "$s3_access_key" --secret-key "$s3_secret_key" --region "$s3_region" --ok 200 >/dev/null \
    || { log "s3s-fs: listing bucket $bucket failed; see $state/s3s-fs/s3s-fs.log"; exit 1; }
  echo "export OUTPOST_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port"
  echo "export OUTPOST_TEST_S3_ACCESS_KEY=$s3_access_key"
  echo "export OUTPOST_TEST_S3_SECRET_KEY=$s3_secret_key"
  echo "export OUTPOST_TEST_S3_BUCKET=$bucket"
  echo "export OUTPOST_TEST_S3_REGION=$s3_region"
  echo "export OUTPOST_TEST_S3_DIR=$data"
}

start_azurite() {
  install_emulators
  local data="$state/azurite/data"
  mkdir -p "$data"
  launch azurite azurite-blob "$az_port" "$tools_bin/azurite-blob" --blobHost 127.0.0.1 \
    --blobPort "$az_port" --location "$data" --skipApiVersionCheck --loose --disableTelemetry
  # A SharedKey-signed Create Container; 409 means it exists already.
  python3 "$root/scripts/storage_request.py" azure PUT \
    "http://127.0.0.1:$az_port/$az_account/$bucket?restype=container" \
    --account "$az_account" --key "$az_key" --ok 201,409 >/dev/null \
    || { log "azurite: creating container $bucket failed; see $state/azurite/azurite.log"; exit 1; }
  echo "export OUTPOST_TEST_AZURE_ENDPOINT=http://127.0.0.1:$az_port/$az_account"
  echo "export OUTPOST_TEST_AZURE_ACCOUNT=$az_account"
  echo "export OUTPOST_TEST_AZURE_KEY=$az_key"
  echo "export OUTPOST_TEST_AZURE_CONTAINER=$bucket"
}

# GCS: fake-gcs-server keeps everything in memory (stopping it deletes the data).
start_fake_gcs() {
  install_emulators
  mkdir -p "$state/fake-gcs"
  launch fake-gcs fake-gcs-server "$gcs_port" "$tools_bin/fake-gcs-server" -scheme http \
    -host 127.0.0.1 -port "$gcs_port" -backend memory -public-host "127.0.0.1:$gcs_port" \
    -external-url "http://127.0.0.1:$gcs_port"
  local code
  code="$(curl -s -o "$state/fake-gcs/create-bucket.json" -w '%{http_code}' --max-time 10 \
    -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$bucket\"}" \
    "http://127.0.0.1:$gcs_port/storage/v1/b?project=test" || true)"
  case "$code" in
    200 | 409) ;;
    *) log "fake-gcs-server: creating bucket $bucket returned HTTP $code; see $state/fake-gcs/"; exit 1 ;;
  esac
  echo "export OUTPOST_TEST_GCS_ENDPOINT=http://127.0.0.1:$gcs_port"
  echo "export OUTPOST_TEST_GCS_BUCKET=$bucket"
}

# Snowflake: fakesnow keeps its databases in memory. FAKESNOW_DEBUG=snowflake makes it print
# every SQL text it receives to its log: the tests' evidence that only catalog queries ran.
start_fakesnow() {
  install_emulators
  mkdir -p "$state/fakesnow/tmp"
  # Its temporary folders (an empty stage bucket per start) go under its state, which `stop`
  # removes, not into /tmp, where they were left behind.
  TMPDIR="$state/fakesnow/tmp" FAKESNOW_DEBUG=snowflake launch fakesnow fakesnow "$snowflake_port" \
    "$tools_bin/fakesnow" -s --host 127.0.0.1 -p "$snowflake_port"
  echo "export OUTPOST_TEST_SNOWFLAKE_URL=http://127.0.0.1:$snowflake_port"
  echo "export OUTPOST_TEST_SNOWFLAKE_LOG=$state/fakesnow/fakesnow.log"
}

stop_emulators() {
  halt s3s-fs s3s-fs
  halt azurite azurite-blob
  halt fake-gcs fake-gcs-server
  halt fakesnow fakesnow
  rm -rf "$state/s3s-fs" "$state/azurite" "$state/fake-gcs" "$state/fakesnow"
}

case "${1:-}" in
  start) start_postgres; start_mariadb; start_s3s_fs; start_azurite; start_fake_gcs; start_fakesnow ;;
  # The state folder goes too once empty: a stopped run leaves nothing in /tmp.
  stop) stop_postgres; stop_mariadb; stop_emulators; rmdir "$state" 2>/dev/null || true ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
