# Shared by the HTTP sources' benchmarks (snowflake.sh, tableau.sh): sourced, never run.
#
#   bench_start NAME   makes $scratch (removed on exit) and $pids (killed on exit: append
#                      each background server's pid), and turns signals into exits so the
#                      cleanup runs;
#   median             the median of the numbers on standard input, one per line;
#   now                the time in seconds, with nanoseconds;
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
