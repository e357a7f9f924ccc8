#!/usr/bin/env bash
# Extraction benchmark, measured side by side in one run on the same server:
#   baseline: psql \copy to /dev/null of the same catalog rows outpost extracts, with the same
#             information per row: the queries of crates/metadata-extract/src/sources/postgres.rs
#             (databases, schemas, tables, columns with their defaults and comments,
#             constraints, indexes, view definitions, lineage) without their ORDER BY, in
#             outpost's session settings, split over two connections as outpost splits them
#             (columns on one, the rest on the other, at the same time);
#   outpost:  `outpost extract --connector=postgres` of the same database: the same rows, in a
#             stable order (the server sorts them), serialised to JSON, compressed, hashed and
#             synced to disk, manifest last.
# The rows psql copies are counted and must equal the records outpost writes, stream by stream:
# a baseline that read less would flatter outpost, one that sorted would hide its sorts. Keep
# the queries below in step with postgres.rs.
# Catalogs of 10,000 and of 100,000 tables x 20 columns (10 schemas).
# Targets (each printed with PASS/FAIL; any FAIL exits 1):
#   - outpost <= 1.25x psql at 10,000 tables, and at 100,000 tables;
#   - outpost peak RSS <= 64 MiB at both sizes;
#   - from 10,000 to 100,000 tables outpost's time grows at most 1.25x as fast as the rows
#     (time ratio / rows ratio <= 1.25: no worse than linear, within 25%).
# Run: crates/metadata-extract/benches/postgres.sh
#   With OUTPOST_TEST_PG_{HOST,PORT,PASSWORD} set (eval "$(cat /tmp/services.env)"), it uses
#   that server and leaves it running; otherwise it runs scripts/services.sh start, and stops
#   the services afterwards only if PostgreSQL was not already running.
#   KEEP=1 keeps the catalogs (building the 100,000-table one takes minutes) and a server it
#   started, for the next run; without it the bench databases are dropped at the end.
#   ROUNDS=n (default 5): rounds per size, after one warm-up round; medians are reported.
#   OUTPOST_BIN=path measures that binary instead of building target/release/outpost.
# Scratch files (outputs, the password file) live in one mktemp -d folder, removed on exit.
set -euo pipefail
for tool in psql bc python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "postgres.sh needs $tool (GNU time: apt-get install time)" >&2; exit 1; }
done
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
# shellcheck source=common.sh
. crates/metadata-extract/benches/common.sh
rounds="${ROUNDS:-5}"
sizes=(10000 100000)
databases=(bench_10k bench_100k)

scratch="$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")"
started_server=0
cleanup() {
  rm -rf "$scratch"
  [ "${KEEP:-0}" = 1 ] && return
  if [ "$started_server" = 1 ]; then
    scripts/services.sh stop
  elif [ -n "${OUTPOST_TEST_PG_PORT:-}" ]; then
    local db
    for db in "${databases[@]}"; do
      psql_admin -d postgres -c "DROP DATABASE IF EXISTS $db" || true
    done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

if [ -z "${OUTPOST_TEST_PG_HOST:-}" ] || [ -z "${OUTPOST_TEST_PG_PORT:-}" ] \
   || [ -z "${OUTPOST_TEST_PG_PASSWORD:-}" ]; then
  # A server already listening belongs to someone else: use it, never stop it.
  (exec 3<>"/dev/tcp/127.0.0.1/${OUTPOST_TEST_PG_PORT:-55432}") 2>/dev/null || started_server=1
  eval "$(scripts/services.sh start)"
fi
export PGPASSWORD="$OUTPOST_TEST_PG_PASSWORD"
psql_admin() { psql -X -q -h "$OUTPOST_TEST_PG_HOST" -p "$OUTPOST_TEST_PG_PORT" -U postgres "$@"; }
# Not quiet: \copy prints `COPY <rows>`, which the baseline counts. The session settings are
# outpost's own (postgres.rs, SESSION_OPTIONS; a test there keeps the two equal): the baseline
# runs the same plans, with the same memory and without parallel workers.
psql_rows() {
  PGOPTIONS="-c default_transaction_read_only=on -c statement_timeout=300000 -c work_mem=64MB -c max_parallel_workers_per_gather=0" \
  psql -X -v ON_ERROR_STOP=1 -h "$OUTPOST_TEST_PG_HOST" -p "$OUTPOST_TEST_PG_PORT" -U postgres "$@"
}


for i in "${!sizes[@]}"; do pg_bench_catalog "${databases[$i]}" "${sizes[$i]}"; done
if [ -n "${OUTPOST_BIN:-}" ]; then
  outpost="$OUTPOST_BIN" # a binary built already (the bench then does not build)
else
  cargo build --release --locked -q -p outpost
  outpost="$root/target/release/outpost"
fi
printf '%s' "$OUTPOST_TEST_PG_PASSWORD" > "$scratch/password"

# The baseline's queries: postgres.rs's without their ORDER BY, with the visible schemas
# (outpost reads them first, and passes them as a parameter or, to COPY, as a literal) given as
# a literal list, and outpost's client-side filters (system schemas, the included database) as
# WHERE clauses.
visible_schemas() { # database -> {s0,s1,…}
  psql_admin -d "$1" -tAc "SELECT '{' || string_agg(n.nspname, ',') || '}' FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
      AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
}
columns_sql='SELECT n.nspname, c.relname, a.attname,
        pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
        pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text,
        ds.description
 FROM pg_catalog.pg_attribute a
 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 LEFT JOIN pg_catalog.pg_description ds
      ON ds.objoid = a.attrelid AND ds.classoid = '"'"'pg_catalog.pg_class'"'"'::regclass AND ds.objsubid = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('"'"'r'"'"', '"'"'v'"'"', '"'"'m'"'"', '"'"'f'"'"', '"'"'p'"'"')
   AND n.nspname = ANY(:SCHEMAS)'
others_sql=(
# databases
"SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.shobj_description(d.oid, 'pg_database'),
        pg_catalog.pg_encoding_to_char(d.encoding), pg_catalog.has_database_privilege(d.oid, 'CONNECT')
 FROM pg_catalog.pg_database d
 WHERE d.datallowconn AND NOT d.datistemplate AND d.datname = current_database()"
# schemas
"SELECT n.nspname, pg_catalog.pg_get_userbyid(n.nspowner), pg_catalog.obj_description(n.oid, 'pg_namespace'),
        pg_catalog.has_schema_privilege(n.oid, 'USAGE')
 FROM pg_catalog.pg_namespace n
 WHERE n.nspname = ANY(:SCHEMAS)"
# tables
"SELECT n.nspname, c.relname, c.relkind::text, c.relispartition, pg_catalog.pg_get_userbyid(c.relowner),
        ds.description,
        CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') AND c.reltuples >= 0 THEN c.reltuples::int8 END,
        pn.nspname, p.relname,
        CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END
 FROM pg_catalog.pg_class c
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
 LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
 LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
 LEFT JOIN pg_catalog.pg_description ds
      ON ds.objoid = c.oid AND ds.classoid = 'pg_catalog.pg_class'::regclass AND ds.objsubid = 0
 WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY(:SCHEMAS)"
# constraints
"SELECT n.nspname, c.relname, con.conname, con.contype::text,
        ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos),
        rn.nspname, r.relname,
        CASE WHEN con.contype = 'f' THEN ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, pos)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos) END,
        CASE WHEN con.contype = 'f' THEN con.confupdtype::text END,
        CASE WHEN con.contype = 'f' THEN con.confdeltype::text END,
        pg_catalog.pg_get_constraintdef(con.oid, true)
 FROM pg_catalog.pg_constraint con
 JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
 LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
 WHERE con.contype IN ('p', 'u', 'f', 'c', 'x') AND n.nspname = ANY(:SCHEMAS)"
# indexes
"SELECT n.nspname, t.relname, i.relname, x.indisunique, x.indisprimary,
        ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k),
        am.amname, pg_catalog.pg_get_expr(x.indpred, x.indrelid, true), pg_catalog.pg_get_indexdef(x.indexrelid)
 FROM pg_catalog.pg_index x
 JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
 JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
 JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
 JOIN pg_catalog.pg_am am ON am.oid = i.relam
 WHERE n.nspname = ANY(:SCHEMAS) AND t.relkind IN ('r', 'm', 'p', 'f')"
# view definitions
"SELECT n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid, true)
 FROM pg_catalog.pg_class c
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(:SCHEMAS)"
# lineage
"SELECT l.view_schema, l.view_name, l.source_schema, l.source_name FROM (
 SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name, sn.nspname AS source_schema, s.relname AS source_name
 FROM pg_catalog.pg_rewrite r
 JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
 JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'n'
 JOIN pg_catalog.pg_class s ON s.oid = d.refobjid
 JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
 WHERE v.relkind IN ('v', 'm') AND s.oid <> v.oid AND vn.nspname = ANY(:SCHEMAS)) l"
)
streams=(database schema table constraint index viewDefinition lineage)

# \copy takes its query on one line.
copy_command() { # sql schemas
  local list="'$2'::name[]"
  local sql="${1//:SCHEMAS/$list}"
  printf '\\copy (%s) TO %s' "$(tr '\n' ' ' <<<"$sql")" "'/dev/null'"
}

baseline() { # database schemas -> writes $scratch/baseline.rows ("stream rows" lines)
  local args=() sql
  for sql in "${others_sql[@]}"; do args+=(-c "$(copy_command "$sql" "$2")"); done
  psql_rows -d "$1" -c "$(copy_command "$columns_sql" "$2")" >"$scratch/columns.rows" &
  local columns=$!
  psql_rows -d "$1" "${args[@]}" >"$scratch/others.rows"
  wait "$columns"
  { printf 'column %s\n' "$(awk '{ print $2 }' "$scratch/columns.rows")"
    awk '{ print $2 }' "$scratch/others.rows" | paste -d' ' <(printf '%s\n' "${streams[@]}") -
  } >"$scratch/baseline.rows"
}

outpost_extract() { # database out (which must not exist: the caller removes it, untimed)
  /usr/bin/time -f "%M" -o "$2.rss" "$outpost" extract --connector=postgres \
    --param=host="$OUTPOST_TEST_PG_HOST" --param=port="$OUTPOST_TEST_PG_PORT" --param=database="$1" \
    --param=user=postgres --param=ssl-mode=disable --param=include-databases="^$1\$" \
    --secrets-dir="$scratch" --out="$2" 2>"$2.log" || { cat "$2.log" >&2; exit 1; }
}

# Records per stream in a manifest, as "stream records" lines, in the baseline's order.
manifest_rows() { # manifest
  python3 -c "import json, sys
totals = json.load(open(sys.argv[1]))['totals']
for stream in ['column'] + sys.argv[2:]: print(stream, totals.get(stream, 0))" "$1" "${streams[@]}"
}


measure() { # database -> prints "psql_seconds outpost_seconds peak_rss_kib records"
  local schemas out="$scratch/out-$1" p=() o=() r=() start round
  schemas="$(visible_schemas "$1")"
  for round in $(seq 0 "$rounds"); do # round 0 warms the server's caches; not counted
    start="$(now)"; baseline "$1" "$schemas"; local ps; ps="$(echo "$(now) - $start" | bc)"
    rm -rf "$out"
    start="$(now)"; outpost_extract "$1" "$out"; local os; os="$(echo "$(now) - $start" | bc)"
    [ "$round" = 0 ] && continue
    p+=("$ps"); o+=("$os"); r+=("$(cat "$out.rss")")
  done
  # The baseline must have read exactly what outpost wrote.
  manifest_rows "$out/manifest.json" >"$scratch/outpost.rows"
  if ! cmp -s "$scratch/baseline.rows" "$scratch/outpost.rows"; then
    echo "$1: the baseline's rows differ from outpost's records (stream, baseline, outpost):" >&2
    paste -d' ' "$scratch/baseline.rows" <(awk '{ print $2 }' "$scratch/outpost.rows") >&2
    exit 1
  fi
  echo "$(printf '%s\n' "${p[@]}" | median) $(printf '%s\n' "${o[@]}" | median)" \
       "$(printf '%s\n' "${r[@]}" | sort -n | tail -1) $(awk '{ s += $2 } END { print s }' "$scratch/outpost.rows")" \
       "$(awk '$2 > 0 { printf "%s%s=%s", sep, $1, $2; sep = " " }' "$scratch/outpost.rows")"
}

failed=0
verdict=""
check() { # condition-for-bc: sets $verdict
  if [ "$(echo "$1" | bc)" = 1 ]; then verdict=PASS; else verdict=FAIL; failed=1; fi
}

declare -A psql_s outpost_s rss records
labels=("10,000" "100,000")
for i in "${!sizes[@]}"; do
  db="${databases[$i]}"
  measure "$db" >"$scratch/measured"
  read -r p o m n kinds <"$scratch/measured"
  psql_s[$db]=$p; outpost_s[$db]=$o; rss[$db]=$m; records[$db]=$n
  ratio=$(echo "scale=3; $o / $p" | bc)
  printf '\n%s tables x 20 columns: %s records (%s), median of %s rounds\n' \
    "${labels[$i]}" "$n" "$kinds" "$rounds"
  printf '  psql \\copy of the same rows:  %8.3f s\n' "$p"
  check "$ratio <= 1.25"
  printf '  outpost extract:              %8.3f s   ratio %5.2fx   (target <= 1.25)  %s\n' \
    "$o" "$ratio" "$verdict"
  check "$m <= 65536"
  printf '  outpost peak RSS:             %8.1f MiB              (target <= 64)    %s\n' \
    "$(echo "scale=1; $m / 1024" | bc)" "$verdict"
done
small=${databases[0]}; large=${databases[1]}
rows_ratio=$(echo "scale=3; ${records[$large]} / ${records[$small]}" | bc)
outpost_ratio=$(echo "scale=3; ${outpost_s[$large]} / ${outpost_s[$small]}" | bc)
psql_ratio=$(echo "scale=3; ${psql_s[$large]} / ${psql_s[$small]}" | bc)
growth=$(echo "scale=3; $outpost_ratio / $rows_ratio" | bc)
printf '\nfrom 10,000 to 100,000 tables: rows x%.2f, psql time x%.2f, outpost time x%.2f\n' \
  "$rows_ratio" "$psql_ratio" "$outpost_ratio"
check "$growth <= 1.25"
printf '  outpost time ratio / rows ratio: %.2f   (target <= 1.25)  %s\n' "$growth" "$verdict"
printf '  outpost peak RSS from 10,000 to 100,000 tables: %s -> %s KiB\n' "${rss[$small]}" "${rss[$large]}"
printf '\nBoth sides read the same rows with the same joins (row counts checked above, stream by\n'
printf 'stream). Only outpost: the ORDER BY that makes its output stable, JSON, zstd, SHA-256 and\n'
printf 'fsync. The bench catalogs have no constraints, indexes, views, defaults or comments: those\n'
printf 'queries run on both sides and return no rows.\n'
if [ "$failed" = 0 ]; then echo "PASS"; else echo "FAIL"; exit 1; fi
