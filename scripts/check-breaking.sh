#!/usr/bin/env bash
# buf breaking: the protos of the working tree of DIR (default: this repository) against
# the wire contract they must keep, which is
#   - the last release tag (v*) reachable from HEAD, when there is one;
#   - else the merge base with main: on a branch, where it forked; on main itself (where
#     the merge base is HEAD), the commit before HEAD, so the check still compares
#     something (comparing main with main could never fail).
# Fails when a change would break clients built from that contract.
set -euo pipefail
dir=${1:-"$(dirname "$0")/.."}
cd "$dir"
base=""
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
  base=$tag
  what="the last release tag $tag"
elif git rev-parse --verify --quiet main >/dev/null; then
  base=$(git merge-base HEAD main)
  what="the merge base with main"
  if [ "$base" = "$(git rev-parse HEAD)" ]; then
    base=$(git rev-parse --verify --quiet 'HEAD^' || true)
    what="the commit before HEAD"
  fi
fi
if [ -z "$base" ]; then
  echo "buf breaking: nothing to compare against (no release tag, no earlier commit)"
  exit 0
fi
echo "buf breaking against $what ($(git rev-parse --short "$base"))"
buf breaking --against ".git#ref=$(git rev-parse "$base")"
