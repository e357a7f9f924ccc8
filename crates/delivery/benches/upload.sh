#!/usr/bin/env bash
# Upload benchmark, measured side by side in one run against the same S3 server:
#   baseline: `aws s3 cp --recursive` (awscli from PyPI, default settings: 10 concurrent
#             requests, 8 MiB multipart chunks);
#   outpost:  `outpost upload` (bucket relay: every file hashed against the manifest, S3
#             SHA-256 checksums, manifest last).
# Payload: one run of 100 files x 10 MiB of random bytes (1 GiB) plus its manifest, to
# s3s-fs 0.14.1 (signature-checking S3 over a folder) on loopback.
# Targets: outpost throughput >= awscli; outpost peak RSS <= 64 MiB.
# Run: crates/delivery/benches/upload.sh   (starts and stops its own s3s-fs; ROUNDS=3;
#      OUTPOST_UPLOAD_ARGS="--memory-mib 16" to try other limits)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
port="${BENCH_S3_PORT:-59100}"
key_id="outpost-bench"
secret="outpost-bench-secret"

tools_bin="$(scripts/install-tools.sh s3s-fs)"
aws="$(scripts/install-awscli.sh)"
cargo build --release --locked -q -p outpost
outpost="$root/target/release/outpost"

# Everything the run writes (1 GiB of payload, the store, logs) is in one folder, removed on
# any exit: success, failure, Ctrl-C or kill.
work="$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-upload.XXXXXX")"
s3s_pid=""
cleanup() {
  # Each step may fail (the server already gone) without skipping the next: under `set -e`
  # a failing `wait` at the end of an `&&` list would end the trap before the `rm`.
  if [ -n "$s3s_pid" ]; then
    kill "$s3s_pid" 2>/dev/null || true
    wait "$s3s_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/store/bench"
"$tools_bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key "$key_id" --secret-key "$secret" \
  "$work/store" >"$work/s3s-fs.log" 2>&1 &
s3s_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

echo "writing 100 x 10 MiB of random bytes and a manifest" >&2
python3 - "$work/run" <<'EOF'
import hashlib, json, os, sys
run = sys.argv[1]
files = []
for i in range(100):
    rel = f"columns/part-{i:05d}.ndjson.zst"
    data = os.urandom(10 * 1024 * 1024)
    os.makedirs(os.path.join(run, "columns"), exist_ok=True)
    with open(os.path.join(run, rel), "wb") as f:
        f.write(data)
    files.append({"path": rel, "kind": "column", "sha256": hashlib.sha256(data).hexdigest(),
                  "bytes": len(data), "records": 1})
manifest = {"formatVersion": "1.0", "outpostVersion": "bench", "connector": "postgres",
            "connection": "bench", "jobId": "job", "runId": "run",
            "startedAt": "2026-11-26T00:00:00Z", "finishedAt": "2026-11-26T00:00:01Z",
            "files": files, "totals": {}, "skipped": []}
with open(os.path.join(run, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
EOF
bytes="$(du -sb "$work/run" | cut -f1)"
mkdir -p "$work/creds"
printf '%s' "$key_id" > "$work/creds/access-key-id"
printf '%s' "$secret" > "$work/creds/secret-access-key"

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run_outpost() { # round
  rm -rf "$work/store/bench/outpost"
  local start end
  start="$(now)"
  /usr/bin/time -f "%M" -o "$work/outpost.rss" "$outpost" upload --from "$work/run" \
    --to "s3://bench/outpost/r$1" --endpoint "http://127.0.0.1:$port" --region us-east-1 \
    --credentials-dir "$work/creds" --connector postgres --connection bench --job-id job \
    --run-id run ${OUTPOST_UPLOAD_ARGS:-} 2>"$work/outpost.log" || { cat "$work/outpost.log" >&2; exit 1; }
  end="$(now)"
  echo "$end - $start" | bc
  rm -rf "$work/store/bench/outpost"
}

run_aws() { # round
  rm -rf "$work/store/bench/aws"
  local start end
  start="$(now)"
  AWS_ACCESS_KEY_ID="$key_id" AWS_SECRET_ACCESS_KEY="$secret" AWS_DEFAULT_REGION=us-east-1 \
    /usr/bin/time -f "%M" -o "$work/aws.rss" "$aws" --endpoint-url "http://127.0.0.1:$port" \
    s3 cp --recursive --only-show-errors "$work/run" "s3://bench/aws/r$1/" \
    || { echo "aws s3 cp failed" >&2; exit 1; }
  end="$(now)"
  echo "$end - $start" | bc
  rm -rf "$work/store/bench/aws"
}

outpost_times=()
aws_times=()
outpost_rss=()
for round in $(seq 1 "$rounds"); do
  # Alternate the order so neither tool always runs on a warmer machine.
  if [ $((round % 2)) = 1 ]; then
    outpost_times+=("$(run_outpost "$round")"); outpost_rss+=("$(cat "$work/outpost.rss")")
    aws_times+=("$(run_aws "$round")")
  else
    aws_times+=("$(run_aws "$round")")
    outpost_times+=("$(run_outpost "$round")"); outpost_rss+=("$(cat "$work/outpost.rss")")
  fi
  echo "round $round: outpost ${outpost_times[-1]} s, awscli ${aws_times[-1]} s" >&2
done

outpost_s="$(printf '%s\n' "${outpost_times[@]}" | median)"
aws_s="$(printf '%s\n' "${aws_times[@]}" | median)"
rss_kib="$(printf '%s\n' "${outpost_rss[@]}" | sort -n | tail -1)"
mib=$(echo "scale=1; $bytes / 1048576" | bc)
printf '\nupload of %s MiB in 101 files to s3s-fs, median of %s rounds\n' "$mib" "$rounds"
printf '  awscli   %6.2f s  %7.1f MiB/s  peak RSS %s MiB\n' "$aws_s" "$(echo "$mib / $aws_s" | bc -l)" "$(( $(cat "$work/aws.rss") / 1024 ))"
printf '  outpost  %6.2f s  %7.1f MiB/s  peak RSS %s MiB (max over rounds)\n' "$outpost_s" "$(echo "$mib / $outpost_s" | bc -l)" "$(( rss_kib / 1024 ))"
printf '  outpost throughput / awscli: %.2fx (target >= 1.0); RSS target <= 64 MiB\n' "$(echo "$aws_s / $outpost_s" | bc -l)"
