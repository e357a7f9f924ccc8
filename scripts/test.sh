#!/usr/bin/env bash
# The whole test suite: what `.ci/run` calls and what the README's second command runs.
# Installs every tool and server the tests need, runs the checks, and stops what it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Snapshots are compared, never rewritten, here and in CI.
export INSTA_UPDATE=no
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "tools"
tools_bin="$(scripts/install-tools.sh)"
export PATH="$tools_bin:$PATH"
kubectl version --client | sed -n 1p
# Tableau's recorded REST answers (install-tools.sh tableau-assets), for tests/tableau_assets.rs.
export OUTPOST_TEST_TABLEAU_ASSETS="$root/.tools/tableau-assets/assets"
# DataHub's CLI (install-tools.sh datahub), the judge of tests/catalog_formats.rs.
export OUTPOST_TEST_DATAHUB="$tools_bin/datahub"
# DataHub's CLI reports usage to its makers unless told not to; tests send nothing outside.
export DATAHUB_TELEMETRY_ENABLED=false

step "servers"
# Captured first: `eval "$(…)"` would ignore a failed start.
service_env="$(scripts/services.sh start)"
eval "$service_env"
log=""
cleanup() {
  scripts/services.sh stop || true
  # `if`, not `&&`: the trap's last status would become the script's.
  if [ -n "$log" ]; then rm -f "$log"; fi
}
trap cleanup EXIT

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "generated files are current"
cargo run --quiet --locked -p outpost -- render --check
cargo run --quiet --locked -p outpost -- schema descriptor | diff -u connectors/connector-descriptor.schema.json -

step "kubectl kustomize workflow-templates"
objects="$(kubectl kustomize workflow-templates | grep -c '^kind:')"
expected="$(grep -c '^- ' workflow-templates/kustomization.yaml)"
if [ "$objects" != "$expected" ]; then
  echo "kustomize rendered $objects objects, kustomization.yaml lists $expected" >&2
  exit 1
fi
echo "kustomize renders all $objects objects"

step "helm chart"
# The chart's own checks (lint, template, kubernetes-validate, Argo schemas, checkov) are
# the test crates/outpost/tests/chart.rs, run with the others below; here, the lint line
# for the log.
helm lint --strict charts/outpost

step "tests"
log="$(mktemp)"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
