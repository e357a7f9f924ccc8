# Shared by the benchmarks (snowflake.sh, tableau.sh, postgres.sh, and catalog-export's
# export.sh): sourced, never run.
#
#   bench_start NAME   makes $scratch (removed on exit) and $pids (killed on exit: append
#                      each background server's pid), and turns signals into exits so the
#                      cleanup runs;
#   median             the median of the numbers on standard input, one per line;
#   now                the time in seconds, with nanoseconds;
#   pg_bench_catalog NAME TABLES
#                      builds (once; kept when it is there already) the PostgreSQL benchmark
#                      catalog: 10 schemas, TABLES tables of 20 columns of four types. Needs
#                      the caller's psql_admin.
#   check CONDITION    sets $status to PASS or FAIL (and $fail=1 on FAIL) for a bc condition.
#                      Call it directly, never in a $(…) subshell: there the FAIL would be
#                      lost and the benchmark would pass whatever it measured.

bench_start() {
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/outpost-$1-bench.XXXXXX")"
  pids=()
  fail=0
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
}

bench_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }
check() { if [ "$(echo "$1" | bc)" = 1 ]; then status=PASS; else status=FAIL; fail=1; fi; }

pg_bench_catalog() { # name tables
  if [ "$(psql_admin -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ] \
     && [ "$(psql_admin -d "$1" -tAc "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace::regnamespace::text LIKE 's_'")" = "$2" ]; then
    return
  fi
  echo "building catalog $1 ($2 tables; this takes a while)" >&2
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
  psql_admin -d "$1" -c "VACUUM ANALYZE"
}
