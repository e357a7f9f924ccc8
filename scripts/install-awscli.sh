#!/usr/bin/env bash
# Installs the AWS CLI (v1, from PyPI) into a virtualenv under .tools/awscli (idempotent).
# Only the S3 benchmark needs it, so neither install-tools.sh nor services.sh calls this.
# Prints the path of the `aws` binary on stdout; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/awscli"
aws="$venv/bin/aws"
if ! "$aws" --version >/dev/null 2>&1; then
  echo "installing awscli into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check awscli >&2
  "$aws" --version >&2
fi
echo "$aws"
