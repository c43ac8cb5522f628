#!/usr/bin/env bash
# Fails when src/statusgate/v1 is not exactly what scripts/generate.sh produces from
# protos/ with the pinned tools: generated code is committed and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/generate.sh >/dev/null
if [ -n "$(git status --porcelain -- src/statusgate/v1)" ]; then
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  git status --short -- src/statusgate/v1 >&2
  git diff --stat -- src/statusgate/v1 >&2
  exit 1
fi
echo "generated code is up to date"
