#!/usr/bin/env bash
# Snowflake extraction benchmark, measured side by side in one run on the same emulator:
#   baseline: a minimal client (Python's http.client, benches/snowflake_replay.py) that logs
#             in and sends the catalog statements outpost sends (SHOW per schema, the columns
#             of each database), two sessions at once as outpost uses them, reads every
#             answer and every result chunk, and throws them away: the emulator's own time
#             to answer, the floor;
#   outpost:  `outpost extract --connector=snowflake` of the same databases: the same answers
#             decoded (Arrow), turned into records, sorted per schema, serialised to JSON,
#             compressed, hashed and synced, manifest last.
# Both go through the conformance layer (examples/snowflake_conformance.rs) in front of
# fakesnow: fakesnow answers any result as one inline Arrow batch (200,000 columns of a
# database in one ~30 MB answer), where Snowflake splits large results into chunks; the layer
# restores chunks of 50,000 rows, so memory is measured as it would be against Snowflake.
# Catalogs: 3 databases x 20 schemas x 500 tables x 20 columns (30,000 tables, 600,000
# columns), and the same at one tenth (50 tables per schema: 3,000 tables).
# Targets (each printed with PASS/FAIL; any FAIL exits 1):
#   - outpost <= 1.3x the baseline at both sizes;
#   - outpost peak RSS <= 64 MiB at both sizes, and flat: at most 8 MiB more at 30,000 tables
#     than at 3,000;
#   - outpost's records equal the catalog: every table and column once.
# Run: crates/metadata-extract/benches/snowflake.sh
#   Starts its own fakesnow (port OUTPOST_BENCH_SNOWFLAKE_PORT, default 58553), in memory:
#   fakesnow's server mode keeps no database files (its -d applies only to sessions that ask
#   for FAKESNOW_DB_PATH at login, and each such session gets a database of its own). Building
#   the 30,000-table catalog takes about 45 minutes on 2 cores, so KEEP=1 leaves that fakesnow
#   running, catalog and all, and a later run with KEEP=1 finds it on its port and uses it.
#   ROUNDS=n (default 3): rounds per size, after one warm-up round; medians are reported.
#   OUTPOST_BIN=path measures that binary instead of building target/release/outpost.
set -euo pipefail
for tool in python3 bc /usr/bin/time curl; do
  command -v "$tool" >/dev/null || { echo "snowflake.sh needs $tool (GNU time: apt-get install time)" >&2; exit 1; }
done
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
port="${OUTPOST_BENCH_SNOWFLAKE_PORT:-58553}"
bench_dir="$root/crates/metadata-extract/benches"
venv="$root/.tools/fakesnow-venv"
[ -x "$venv/bin/fakesnow" ] || scripts/install-tools.sh fakesnow >/dev/null

# shellcheck source=common.sh
. "$root/crates/metadata-extract/benches/common.sh"
bench_start snowflake

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  if [ "${KEEP:-0}" != 1 ]; then
    echo "port $port is taken; set OUTPOST_BENCH_SNOWFLAKE_PORT (or KEEP=1 to use a kept fakesnow)" >&2
    exit 1
  fi
  echo "using the fakesnow kept on port $port" >&2
else
  nohup "$venv/bin/fakesnow" -s --host 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/outpost-snowflake-bench-fakesnow.log" 2>&1 &
  # A kept fakesnow outlives this script (stop it with: pkill -f "fakesnow -s --host 127.0.0.1 -p $port").
  [ "${KEEP:-0}" = 1 ] || pids+=($!)
fi
for _ in $(seq 1 240); do
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" && break
  sleep 0.25
done

# Catalogs: BENCH_TENTH_{1,2,3} and BENCH_FULL_{1,2,3}, made (or found complete) by the
# generator through the Python connector in fakesnow's venv.
"$venv/bin/python" "$bench_dir/snowflake_replay.py" generate "http://127.0.0.1:$port" \
  TENTH:3:20:50:20 FULL:3:20:500:20 >&2

if [ -n "${OUTPOST_BIN:-}" ]; then
  outpost="$OUTPOST_BIN"
else
  cargo build --release --locked -q -p outpost
  outpost="$root/target/release/outpost"
fi
cargo build --release --locked -q -p metadata-extract --example snowflake_conformance
"$root/target/release/examples/snowflake_conformance" "http://127.0.0.1:$port" bench-password 50000 \
  >"$scratch/proxy.out" 2>"$scratch/proxy.log" &
pids+=($!)
proxy_port=""
for _ in $(seq 1 100); do
  proxy_port="$(awk '/^port /{ print $2 }' "$scratch/proxy.out")"
  [ -n "$proxy_port" ] && break
  sleep 0.1
done
[ -n "$proxy_port" ] || { echo "the conformance layer did not start: $(cat "$scratch/proxy.log")" >&2; exit 1; }

# The connection, as its Secret would be mounted.
conn="$scratch/connection"
mkdir -p "$conn"
printf 'bench-account' >"$conn/account"
printf '127.0.0.1' >"$conn/host"
printf '%s' "$proxy_port" >"$conn/port"
printf 'BENCH' >"$conn/user"
printf 'password' >"$conn/authenticator"
printf 'disable' >"$conn/ssl-mode"
printf 'bench-password' >"$conn/password"


measure() { # size -> "baseline_seconds outpost_seconds rss_kib tables columns"
  local size="$1" b=() o=() r=() start round out
  for round in $(seq 0 "$rounds"); do
    start="$(now)"
    "$venv/bin/python" "$bench_dir/snowflake_replay.py" replay "http://127.0.0.1:$proxy_port" \
      bench-password "BENCH_${size}_" >/dev/null
    [ "$round" = 0 ] || b+=("$(echo "$(now) - $start" | bc)")
    out="$scratch/out-$size-$round"
    start="$(now)"
    /usr/bin/time -f "%M" -o "$out.rss" "$outpost" extract --connector=snowflake \
      --param="include-databases=^BENCH_${size}_" --secrets-dir="$conn" --out="$out" \
      2>"$out.log" || { cat "$out.log" >&2; exit 1; }
    [ "$round" = 0 ] || { o+=("$(echo "$(now) - $start" | bc)"); r+=("$(cat "$out.rss")"); }
    [ "$round" = "$rounds" ] || rm -rf "$out"
  done
  printf '%s %s %s %s\n' "$(printf '%s\n' "${b[@]}" | median)" "$(printf '%s\n' "${o[@]}" | median)" \
    "$(printf '%s\n' "${r[@]}" | sort -n | tail -1)" \
    "$(python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['totals']; print(t.get('table',0), t.get('column',0))" "$out/manifest.json")"
}

declare -A rss
for spec in TENTH:3000 FULL:30000; do
  size="${spec%%:*}" tables="${spec##*:}"
  read -r base out peak got_tables got_columns <<<"$(measure "$size")"
  rss[$size]="$peak"
  ratio="$(echo "scale=2; $out / $base" | bc)"
  echo
  echo "$tables tables x 20 columns (3 databases x 20 schemas), median of $rounds rounds"
  printf '  emulator, minimal client:  %7.3f s\n' "$base"
  check "$ratio <= 1.3"
  printf '  outpost extract:           %7.3f s   ratio %5.2fx   (target <= 1.3)  %s\n' \
    "$out" "$ratio" "$status"
  check "$peak <= 65536"
  printf '  outpost peak RSS:          %7.1f MiB              (target <= 64)   %s\n' \
    "$(echo "scale=1; $peak / 1024" | bc)" "$status"
  check "$got_tables == $tables && $got_columns == $((tables * 20))"
  printf '  records: %s tables, %s columns (catalog: %s, %s)      %s\n' "$got_tables" "$got_columns" \
    "$tables" "$((tables * 20))" "$status"
done
growth=$(( (rss[FULL] - rss[TENTH]) / 1024 ))
echo
check "$growth <= 8"
printf 'peak RSS from 3,000 to 30,000 tables: %s -> %s KiB (+%s MiB; target <= 8)  %s\n' \
  "${rss[TENTH]}" "${rss[FULL]}" "$growth" "$status"
[ "$fail" = 0 ] || { echo FAIL; exit 1; }
echo PASS
