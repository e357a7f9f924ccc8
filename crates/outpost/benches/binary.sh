#!/usr/bin/env bash
# Release binary benchmark: the size of the binary the image ships, and how fast it starts.
#   size:  the release `outpost` (built by scripts/build-binary.sh, as the Dockerfile builds
#          it); target: the limit that script enforces (scripts/build-binary.sh --limit-mib).
#   start: median wall time of `outpost --version` over RUNS runs (default 50), after 5
#          warm-up runs, each timed from the shell around fork + exec + exit; target < 10 ms.
# Prints PASS or FAIL per target and exits non-zero when one is missed.
# Run: crates/outpost/benches/binary.sh   (RUNS=200 for more runs). The build goes to
#      target/release as any release build; the copy measured is removed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
runs="${RUNS:-50}"
size_target_mib="$(scripts/build-binary.sh --limit-mib)"
start_target_ms=10

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

size_status=0
scripts/build-binary.sh "$work/outpost" || size_status=$?
if [ "$size_status" != 0 ] && [ "$size_status" != 3 ]; then
  echo "build failed" >&2
  exit "$size_status"
fi
limit_mib="$size_target_mib"
bytes="$(stat -c %s "$work/outpost")"

"$work/outpost" --version
for _ in 1 2 3 4 5; do "$work/outpost" --version >/dev/null; done
: >"$work/times"
for _ in $(seq 1 "$runs"); do
  t0=$EPOCHREALTIME
  "$work/outpost" --version >/dev/null
  t1=$EPOCHREALTIME
  echo "$t0 $t1" >>"$work/times"
done
median_ms="$(awk '{ print ($2 - $1) * 1000 }' "$work/times" | sort -n |
  awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }')"

verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
size_mib="$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')"
size_ok="$(awk -v b="$bytes" -v l="$limit_mib" 'BEGIN { print (b <= l * 1048576) ? 1 : 0 }')"
start_ok="$(awk -v m="$median_ms" -v t="$start_target_ms" 'BEGIN { print (m < t) ? 1 : 0 }')"
printf '\nrelease binary (%s)\n' "$(uname -m)"
printf '  size                 %8s MiB  (%s bytes; target <= %s MiB)  %s\n' \
  "$size_mib" "$bytes" "$limit_mib" "$(verdict "$size_ok")"
printf '  start, --version     %8s ms   (median of %s runs; target < %s ms)  %s\n' \
  "$median_ms" "$runs" "$start_target_ms" "$(verdict "$start_ok")"
[ "$size_ok" = 1 ] && [ "$start_ok" = 1 ]
