#!/usr/bin/env bash
# Extraction benchmark, measured side by side in one run on the same server:
#   baseline: psql \copy of the catalog rows (one query over pg_attribute joined to
#             pg_class and pg_namespace) to /dev/null;
#   outpost:  `outpost extract` of the same catalog (every stream, compressed, hashed).
# Catalogs of 10,000 tables x 20 columns and of 1,000 tables x 20 columns.
# Targets: outpost <= 1.5x psql at 10,000 tables; peak RSS <= 64 MiB; the 1,000-table RSS
# within 10% of the 10,000-table one (memory does not grow with the catalog).
# Run: crates/metadata-extract/benches/postgres.sh   (starts and stops its own server)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
rounds="${ROUNDS:-5}"
eval "$(scripts/services.sh start)"
# KEEP=1 leaves the server and its catalogs for the next run (building them takes minutes).
[ "${KEEP:-0}" = 1 ] || trap 'scripts/services.sh stop' EXIT
export PGPASSWORD="$OUTPOST_TEST_PG_PASSWORD"
psql_admin() { psql -X -q -h "$OUTPOST_TEST_PG_HOST" -p "$OUTPOST_TEST_PG_PORT" -U postgres "$@"; }

make_catalog() { # name tables
  if [ "$(psql_admin -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ] \
     && [ "$(psql_admin -d "$1" -tAc "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace::regnamespace::text LIKE 's_'")" = "$2" ]; then
    return
  fi
  psql_admin -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  psql_admin -d "$1" -c "DO \$\$ BEGIN FOR s IN 0..9 LOOP EXECUTE format('CREATE SCHEMA s%s', s); END LOOP; END \$\$;"
  # Batches of 1,000 tables: one transaction cannot lock them all.
  local from
  for from in $(seq 1 1000 "$2"); do
  psql_admin -d "$1" -c "
    DO \$\$ BEGIN
      FOR t IN $from..$((from + 999 < $2 ? from + 999 : $2)) LOOP
        EXECUTE format('CREATE TABLE s%s.t%s (%s)', t % 10, t,
          (SELECT string_agg(format('c%s %s', c, CASE c % 4 WHEN 0 THEN 'integer' WHEN 1 THEN 'text'
                  WHEN 2 THEN 'numeric(12,2)' ELSE 'timestamptz' END), ', ') FROM generate_series(1, 20) c));
      END LOOP;
    END \$\$;"
  done
  psql_admin -d "$1" -c "ANALYZE"
}

echo "building catalogs (this takes a minute)" >&2
make_catalog bench_10k 10000
make_catalog bench_1k 1000
cargo build --release --locked -q -p outpost
outpost="$root/target/release/outpost"
secrets="$(mktemp -d)"
printf '%s' "$OUTPOST_TEST_PG_PASSWORD" > "$secrets/password"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }

psql_copy() { # database
  psql_admin -d "$1" -c "\copy (SELECT n.nspname, c.relname, a.attname, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','f','p') AND n.nspname NOT IN ('pg_catalog','information_schema','pg_toast')) TO '/dev/null'"
}

outpost_extract() { # database out
  rm -rf "$2"
  /usr/bin/time -f "%M" -o "$2.rss" "$outpost" extract --connector=postgres \
    --param=host="$OUTPOST_TEST_PG_HOST" --param=port="$OUTPOST_TEST_PG_PORT" --param=database="$1" \
    --param=user=postgres --param=ssl-mode=disable --param=include-databases="^$1\$" \
    --secrets-dir="$secrets" --out="$2" 2>/dev/null
}

measure() { # database -> prints "psql_seconds outpost_seconds peak_rss_kib"
  local p=() o=() r=() start
  for _ in $(seq 1 "$rounds"); do
    start="$(now)"; psql_copy "$1"; p+=("$(echo "$(now) - $start" | bc)")
    start="$(now)"; outpost_extract "$1" "/tmp/outpost-bench-$1"; o+=("$(echo "$(now) - $start" | bc)")
    r+=("$(cat "/tmp/outpost-bench-$1.rss")")
  done
  echo "$(printf '%s\n' "${p[@]}" | median) $(printf '%s\n' "${o[@]}" | median) $(printf '%s\n' "${r[@]}" | sort -n | tail -1)"
}

read -r p10 o10 rss10 < <(measure bench_10k)
read -r p1 o1 rss1 < <(measure bench_1k)
records=$(python3 -c "import json; m = json.load(open('/tmp/outpost-bench-bench_10k/manifest.json')); print(sum(m['totals'].values()))")
ratio=$(echo "scale=2; $o10 / $p10" | bc)
rss_mib=$(echo "scale=1; $rss10 / 1024" | bc)
growth=$(echo "scale=1; ($rss10 - $rss1) * 100 / $rss1" | bc)
printf '\n10,000 tables x 20 columns (%s records), median of %s:\n' "$records" "$rounds"
printf '  psql \\copy of the catalog rows: %8.3f s\n' "$p10"
printf '  outpost extract:                 %8.3f s   ratio %sx (target <= 1.5)\n' "$o10" "$ratio"
printf '  outpost peak RSS:                %8s MiB (target <= 64)\n' "$rss_mib"
printf '1,000 tables x 20 columns: psql %.3f s, outpost %.3f s, peak RSS %s KiB\n' "$p1" "$o1" "$rss1"
printf 'RSS growth from 1,000 to 10,000 tables: %s%% (target <= 10%%)\n' "$growth"
ok=1
[ "$(echo "$ratio <= 1.5" | bc)" = 1 ] || ok=0
[ "$(echo "$rss10 <= 65536" | bc)" = 1 ] || ok=0
[ "$(echo "$growth <= 10" | bc)" = 1 ] || ok=0
[ "$ok" = 1 ] && echo "PASS" || echo "FAIL"
