#!/usr/bin/env bash
# Export benchmark, side by side in one run on the same server and catalog:
#   baseline: `outpost extract --connector=postgres` of a 10,000-table × 20-column catalog;
#   measured: the same extraction followed by `outpost export --format datahub` of its run
#             (and, reported beside it, `--format openlineage`).
# Targets (each printed with PASS/FAIL; any FAIL exits 1):
#   - extract + export to DataHub's format <= 2x extraction alone (median of the rounds);
#   - peak RSS of the export <= 64 MiB (and of the extraction, as postgres.sh checks).
# The export's proposals are counted: every table must have its schemaMetadata.
# Run: crates/catalog-export/benches/export.sh
#   With OUTPOST_TEST_PG_{HOST,PORT,PASSWORD} set (eval "$(cat /tmp/services.env)"), it uses
#   that server; otherwise scripts/services.sh start, stopped afterwards if it started it.
#   KEEP=1 keeps the catalog (bench_10k, shared with postgres.sh) for the next run.
#   ROUNDS=n (default 5) after one warm-up; OUTPOST_BIN=path measures that binary.
# Scratch (runs, exports, the password file) lives in one mktemp -d folder, removed on exit.
set -euo pipefail
for tool in psql bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "export.sh needs $tool (GNU time: apt-get install time)" >&2; exit 1; }
done
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
# shellcheck source=../../metadata-extract/benches/common.sh
. crates/metadata-extract/benches/common.sh
bench_start export
rounds="${ROUNDS:-5}"
database=bench_10k
tables=10000

started_server=0
stop_services() {
  if [ "$started_server" = 1 ] && [ "${KEEP:-0}" != 1 ]; then scripts/services.sh stop; fi
}
trap 'bench_cleanup; stop_services' EXIT
if [ -z "${OUTPOST_TEST_PG_HOST:-}" ] || [ -z "${OUTPOST_TEST_PG_PORT:-}" ] \
   || [ -z "${OUTPOST_TEST_PG_PASSWORD:-}" ]; then
  (exec 3<>"/dev/tcp/127.0.0.1/${OUTPOST_TEST_PG_PORT:-55432}") 2>/dev/null || started_server=1
  eval "$(scripts/services.sh start)"
fi
export PGPASSWORD="$OUTPOST_TEST_PG_PASSWORD"
psql_admin() { psql -X -q -h "$OUTPOST_TEST_PG_HOST" -p "$OUTPOST_TEST_PG_PORT" -U postgres "$@"; }

# The catalog of postgres.sh, built once (common.sh).
pg_bench_catalog "$database" "$tables"

if [ -n "${OUTPOST_BIN:-}" ]; then
  outpost="$OUTPOST_BIN"
else
  cargo build --release --locked -q -p outpost
  outpost="$root/target/release/outpost"
fi
printf '%s' "$OUTPOST_TEST_PG_PASSWORD" > "$scratch/password"

extract() { # out
  rm -rf "$1"
  "$outpost" --quiet extract --connector=postgres --param=host="$OUTPOST_TEST_PG_HOST" \
    --param=port="$OUTPOST_TEST_PG_PORT" --param=database="$database" --param=user=postgres \
    --param=ssl-mode=disable --param=include-databases="^$database\$" \
    --secrets-dir="$scratch" --out "$1"
}
export outpost database scratch
export -f extract
# Prints "seconds peak-KiB" of one command.
timed() { /usr/bin/time -f '%e %M' -o "$scratch/time" "$@" >/dev/null; cat "$scratch/time"; }

extract "$scratch/warm" && "$outpost" --quiet export --from "$scratch/warm" --format datahub --out "$scratch/warm.json"
: > "$scratch/alone"; : > "$scratch/both"; : > "$scratch/ol"
for round in $(seq 1 "$rounds"); do
  read -r t_alone m_alone < <(timed bash -c 'extract "$1"' _ "$scratch/run")
  read -r t_export m_export < <(timed "$outpost" --quiet export --from "$scratch/run" --format datahub --out "$scratch/datahub.json")
  read -r t_ol m_ol < <(timed "$outpost" --quiet export --from "$scratch/run" --format openlineage --out "$scratch/ol.jsonl")
  echo "$t_alone $m_alone" >> "$scratch/alone"
  echo "$(echo "$t_alone + $t_export" | bc) $m_export" >> "$scratch/both"
  echo "$t_ol $m_ol" >> "$scratch/ol"
  echo "round $round: extract ${t_alone}s, + DataHub export ${t_export}s, OpenLineage export ${t_ol}s" >&2
done
col() { awk -v c="$1" '{ print $c }' "$2" | median; }
alone="$(col 1 "$scratch/alone")"
both="$(printf '%.2f' "$(col 1 "$scratch/both")")"
ol="$(col 1 "$scratch/ol")"
rss_extract="$(col 2 "$scratch/alone")"
rss_export="$(col 2 "$scratch/both")"
rss_ol="$(col 2 "$scratch/ol")"
schemas="$(grep -c '"aspectName":"schemaMetadata"' "$scratch/datahub.json")"
proposals="$(grep -c '"entityType"' "$scratch/datahub.json")"
events="$(wc -l < "$scratch/ol.jsonl")"
mib() { echo "scale=1; $1 / 1024" | bc; }

echo
echo "catalog: $tables tables x 20 columns; median of $rounds rounds"
printf '%-34s %8s %10s\n' "" "time" "peak RSS"
printf '%-34s %7ss %7s MiB\n' "extract alone" "$alone" "$(mib "$rss_extract")"
printf '%-34s %7ss %7s MiB\n' "extract + export (DataHub)" "$both" "$(mib "$rss_export")"
printf '%-34s %7ss %7s MiB\n' "export (OpenLineage) alone" "$ol" "$(mib "$rss_ol")"
echo "DataHub proposals: $proposals ($schemas schemaMetadata); OpenLineage events: $events"
ratio="$(echo "scale=2; $both / $alone" | bc)"
check "$both <= 2 * $alone"; echo "extract + export / extract alone: ${ratio}x (target <= 2x): $status"
check "$rss_export <= 64 * 1024"; echo "export peak RSS $(mib "$rss_export") MiB (target <= 64): $status"
check "$schemas == $tables && $events == $tables"; echo "every table exported ($schemas schemas, $events events): $status"
exit "$fail"
