#!/usr/bin/env bash
# Tableau extraction benchmark, measured side by side in one run on the same server:
#   baseline: a minimal client (Python's http.client, benches/tableau_replay.py) that signs in
#             and sends the very Metadata API requests outpost sent (the fake records them),
#             one after another on one connection, reads every answer and throws it away: the
#             server's own time to answer the same pages, the floor;
#   outpost:  `outpost extract --connector=tableau` of the site: sign-in, serverinfo, the
#             projects by REST, every Metadata API page parsed, turned into records and
#             lineage edges, serialised to JSON, compressed, hashed and synced, manifest last.
# The server is the Tableau fake (crates/tableau-fake, release build: REST XML and a real
# GraphQL engine over the generated site; no Tableau server can run here).
# Sites: 2,000 workbooks x 10 sheets (20,000 sheets, 4,000 dashboards), 3,000 published and
# 2,000 embedded data sources (5,000) x 40 fields (200,000 fields), and the same at one tenth.
# Each size runs without rate limits and with them (every 10th Metadata API request answers
# HTTP 429 with Retry-After: 0, every 33rd RATE_EXCEEDED, which carries no delay: outpost
# waits it out with its own backoff, a second at first).
# Printed per run: wall time, requests (REST and Metadata API, counted by the server), pages,
# rate-limited answers, peak RSS, and the records against the site.
# Targets (each printed with PASS/FAIL; any FAIL exits 1):
#   - full size without rate limits: under 60 s, and at most 64 MiB peak RSS;
#   - memory flat: at most 8 MiB more peak RSS at full size than at one tenth;
#   - every run's records equal the site: every workbook, sheet, dashboard, data source and
#     field once, rate limits or not;
#   - the token's secret appears nowhere in the output or the logs.
# Run: crates/metadata-extract/benches/tableau.sh
#   ROUNDS=n (default 3): rounds of the unlimited runs, medians reported.
#   OUTPOST_BIN=path measures that binary instead of building target/release/outpost.
set -euo pipefail
for tool in python3 bc /usr/bin/time zstd; do
  command -v "$tool" >/dev/null || { echo "tableau.sh needs $tool (GNU time: apt-get install time)" >&2; exit 1; }
done
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
bench_dir="$root/crates/metadata-extract/benches"
secret="bench-CANARY-SECRET-$$"

# shellcheck source=common.sh
. "$root/crates/metadata-extract/benches/common.sh"
bench_start tableau

if [ -n "${OUTPOST_BIN:-}" ]; then
  outpost="$OUTPOST_BIN"
else
  cargo build --release --locked -q -p outpost
  outpost="$root/target/release/outpost"
fi
cargo build --release --locked -q -p tableau-fake
fake_bin="$root/target/release/tableau-fake"


# Starts the fake for a size (workbooks published) with extra flags; sets $fake_url, $fake_in
# (its standard input: closing it stops the server) and $fake_out.
start_fake() {
  local name="$1" workbooks="$2" published="$3"
  shift 3
  fake_out="$scratch/$name.fake"
  mkfifo "$scratch/$name.in"
  "$fake_bin" --site bench --workbooks "$workbooks" --sheets-per-workbook 10 \
    --published "$published" --fields-per-datasource 40 --tables "$published" \
    --token-name bench-token --token-secret "$secret" "$@" \
    <"$scratch/$name.in" >"$fake_out" 2>"$fake_out.err" &
  pids+=($!)
  fake_pid=$!
  exec {fake_in}>"$scratch/$name.in"
  fake_url=""
  for _ in $(seq 1 600); do
    fake_url="$(awk '/^url /{ print $2 }' "$fake_out")"
    [ -n "$fake_url" ] && break
    sleep 0.1
  done
  [ -n "$fake_url" ] || { echo "the fake did not start: $(cat "$fake_out.err")" >&2; exit 1; }
}

# Stops the fake; sets $counters to what it counted (JSON). Not called in a $(…) subshell:
# there closing its standard input would close only the subshell's copy, and the server
# would go on running.
stop_fake() {
  exec {fake_in}>&-
  wait "$fake_pid"
  counters="$(awk '/^counters /{ sub(/^counters /, ""); print }' "$fake_out")"
  [ -n "$counters" ] || { echo "the fake ended without its counters: $(cat "$fake_out.err")" >&2; exit 1; }
}

# The connection, as its Secret would be mounted (pointed at each fake's port in turn).
conn="$scratch/connection"
mkdir -p "$conn"
printf '127.0.0.1' >"$conn/host"
printf 'bench' >"$conn/site"
printf 'disable' >"$conn/ssl-mode"
printf 'bench-token' >"$conn/pat-name"
printf '%s' "$secret" >"$conn/pat-secret"

# One extraction; sets $seconds, $rss_kib, $counters, $out.
extract() {
  local name="$1" workbooks="$2" published="$3"
  shift 3
  start_fake "$name" "$workbooks" "$published" "$@"
  printf '%s' "${fake_url##*:}" >"$conn/port"
  out="$scratch/out-$name"
  local start
  start="$(now)"
  /usr/bin/time -f "%M" -o "$out.rss" "$outpost" extract --connector=tableau \
    --secrets-dir="$conn" --out="$out" 2>"$out.log" || { cat "$out.log" >&2; exit 1; }
  seconds="$(echo "$(now) - $start" | bc)"
  rss_kib="$(cat "$out.rss")"
  stop_fake
}


# Checks the run's records against the site; prints one line.
check_records() { # workbooks published
  local w="$1" p="$2" got
  got="$(python3 - "$out/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = m["totals"]
print(t.get("workbook", 0), t.get("sheet", 0), t.get("dashboard", 0), t.get("datasource", 0),
      t.get("field", 0), t.get("biLineage", 0), len(m.get("incomplete", [])))
PY
)"
  read -r gw gs gd gds gf gl gi <<<"$got"
  check "$gw == $w && $gs == $w * 10 && $gd == $w * 2 && $gds == $w + $p && $gf == ($w + $p) * 40 && $gl > 0 && $gi == 0"
  printf '  records: %s workbooks, %s sheets, %s dashboards, %s data sources, %s fields, %s lineage edges\n' \
    "$gw" "$gs" "$gd" "$gds" "$gf" "$gl"
  printf '           (site: %s, %s, %s, %s, %s)   %s\n' "$w" "$((w * 10))" "$((w * 2))" "$((w + p))" \
    "$(((w + p) * 40))" "$status"
  # The token's secret: not in the logs, nor in any record.
  if grep -q -- "$secret" "$out.log" || zstd -dcq "$out"/*/*.zst | grep -q -- "$secret"; then
    status=FAIL; fail=1
  else
    status=PASS
  fi
  printf '  token secret in output or logs: %s   %s\n' "$(grep -c -- "$secret" "$out.log" || true)" "$status"
}

counter() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$counters" "$1"; }

declare -A rss
for spec in TENTH:200:300 FULL:2000:3000; do
  IFS=: read -r size w p <<<"$spec"
  o=() r=()
  for round in $(seq 0 "$rounds"); do
    extract "$size-$round" "$w" "$p" --record "$scratch/$size.requests"
    [ "$round" = 0 ] && continue
    o+=("$seconds")
    r+=("$rss_kib")
    [ "$round" = "$rounds" ] || rm -rf "$out"
  done
  wall="$(printf '%s\n' "${o[@]}" | median)"
  peak="$(printf '%s\n' "${r[@]}" | sort -n | tail -1)"
  rss[$size]="$peak"
  # The baseline: the last round's requests, replayed on a fresh server.
  b=()
  for round in $(seq 1 "$rounds"); do
    start_fake "$size-replay-$round" "$w" "$p"
    start="$(now)"
    python3 "$bench_dir/tableau_replay.py" "$fake_url" bench bench-token "$secret" "$scratch/$size.requests" >/dev/null
    b+=("$(echo "$(now) - $start" | bc)")
    saved="$counters"
    stop_fake
    counters="$saved"
  done
  base="$(printf '%s\n' "${b[@]}" | median)"
  ratio="$(echo "scale=2; $wall / $base" | bc)"
  echo
  echo "$w workbooks, $((w * 10)) sheets, $((w + p)) data sources, $(((w + p) * 40)) fields; no rate limits; median of $rounds rounds"
  printf '  server, minimal client:    %7.2f s   (the same %s pages, replayed)\n' "$base" "$(wc -l <"$scratch/$size.requests")"
  if [ "$size" = FULL ]; then check "$wall < 60"; target='(target < 60 s)'; else status=''; target=''; fi
  printf '  outpost extract:           %7.2f s   ratio %5.2fx   %s  %s\n' "$wall" "$ratio" "$target" "$status"
  printf '  requests: %s REST, %s Metadata API, %s pages\n' "$(counter restRequests)" \
    "$(counter metadataRequests)" "$(counter pages)"
  check "$peak <= 65536"
  printf '  outpost peak RSS:          %7.1f MiB                (target <= 64)   %s\n' \
    "$(echo "scale=1; $peak / 1024" | bc)" "$status"
  check_records "$w" "$p"
  rm -rf "$out"

  extract "$size-limited" "$w" "$p" --http-429-every 10 --rate-exceeded-every 33
  echo "  with rate limits (HTTP 429 every 10th request, RATE_EXCEEDED every 33rd), one round:"
  printf '  outpost extract:           %7.2f s   peak RSS %.1f MiB\n' "$seconds" "$(echo "scale=1; $rss_kib / 1024" | bc)"
  printf '  requests: %s REST, %s Metadata API (%s rate-limited), %s pages\n' "$(counter restRequests)" \
    "$(counter metadataRequests)" "$(counter throttled)" "$(counter pages)"
  check_records "$w" "$p"
  rm -rf "$out"
done
growth=$(( (rss[FULL] - rss[TENTH]) / 1024 ))
echo
check "$growth <= 8"
printf 'peak RSS from one tenth to full size: %s -> %s KiB (+%s MiB; target <= 8)  %s\n' \
  "${rss[TENTH]}" "${rss[FULL]}" "$growth" "$status"
[ "$fail" = 0 ] || { echo FAIL; exit 1; }
echo PASS
