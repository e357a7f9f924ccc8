#!/usr/bin/env bash
# Builds the `outpost` binary the image ships, and checks its size. One command for the
# Dockerfile's build stage, CI (scripts/test.sh) and the benchmark
# (crates/outpost/benches/binary.sh), so the three cannot drift apart:
#
#   scripts/build-binary.sh DEST     # build, install the binary at DEST, check its size
#   scripts/build-binary.sh --limit-mib   # print the size limit (MiB) and exit
#
# The release profile (Cargo.toml) is the one measured and shipped: thin LTO, one codegen
# unit, stripped. The binary must stay within the limit below; over it, the binary is still
# installed and its size printed, and the exit status is 3. Any other failure exits non-zero
# too, before installing. Progress and the size line go to stderr.
#
# The limit is 29 MiB. The binary was 24.96 MiB before the Snowflake connector, whose Arrow
# IPC decoding (the arrow crates, as the project requires for Arrow), PKCS#8 key decryption
# and ACCOUNT_USAGE mode added 1.97 MiB (26.93 MiB); the streaming Arrow decoder and the
# allocator's tuning made it 26.96 MiB, and output format 1.2's BI records (their serde and
# JSON Schemas, for the Tableau source) 27.03 MiB (28,346,832 bytes) on x86_64, past the
# 27 MiB this limit was. Registering the Tableau source (its REST and Metadata API clients and
# XML models) made it 27.65 MiB (28,990,480 bytes), signed manifests with `verify` (its
# bucket read-back) 27.86 MiB (29,213,584 bytes), and the query audit 27.91 MiB (29,269,456
# bytes). `outpost export` (the DataHub and OpenLineage formats, and zstd's decoder, which
# reading a run back needs: until then the binary only compressed) made it 28.29 MiB
# (29,661,584 bytes), past the 28 MiB this limit was: raised by 1 MiB, with this reason, and
# flagged to the team under issue 16, whose 25 MiB target stays open. Tableau in both
# formats and exports delivered with the run (`--export`, output format 1.4) made it 28.88 MiB
# (30,278,608 bytes), once the formats were compiled in one crate only (they had been
# instantiated twice, once at opt-level 3: 29.27 MiB). The next step down is
# structural (a binary without `control-plane serve` and `verify` for connector pods, or
# kube's and arrow's features), not another raise. CI and the image build fail as soon as the
# binary grows past it.
# crates/outpost/benches/binary.sh reports against the same limit, with the start time.
set -euo pipefail
limit_mib=29

if [ "${1:-}" = "--limit-mib" ]; then
  echo "$limit_mib"
  exit 0
fi
if [ $# -ne 1 ]; then
  echo "usage: $0 DEST | --limit-mib" >&2
  exit 2
fi
dest="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cargo build --release --locked -p outpost
install -D -m 0755 "${CARGO_TARGET_DIR:-target}/release/outpost" "$dest"

bytes="$(stat -c %s "$dest")"
limit_bytes=$((limit_mib * 1024 * 1024))
printf 'outpost binary: %s bytes (%s MiB), limit %s MiB\n' "$bytes" \
  "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')" "$limit_mib" >&2
if [ "$bytes" -gt "$limit_bytes" ]; then
  echo "the outpost binary is over its size limit" >&2
  exit 3
fi
