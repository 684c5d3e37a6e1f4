#!/usr/bin/env bash
# Builds the hnswlib-node native addon for AWS Lambda (Amazon Linux 2023: glibc 2.34, GLIBCXX <= 3.4.29)
# and lays it out as a Lambda layer:
#
#   layers/hnswlib/build/nodejs/node_modules/{hnswlib-node,bindings,file-uri-to-path}
#
# Lambda puts /opt/nodejs/node_modules on NODE_PATH, so functions load it with
# createRequire(import.meta.url)('hnswlib-node') (ESM `import` ignores NODE_PATH).
#
# Why g++-11 and static runtime libraries: Debian's default g++ 12 with a static libstdc++ needs
# glibc 2.36, which Lambda does not have (KNOWN-TRAPS). g++-11 with -static-libstdc++ -static-libgcc
# needs at most glibc 2.34. -Wl,--exclude-libs,ALL keeps the static libstdc++ symbols private so they
# never interpose on the ones the node binary exports.
#
# The addon uses only Node-API (ABI-stable), so building it against the Node 20 headers in /usr loads
# on Lambda's Node.js 22 runtime; check-symbols.ts verifies that every symbol it takes from the host
# process is a napi_*/node_api_* one.
#
# Environment:
#   LAYER_MARCH   -march for the compiler (default x86-64-v3: AVX2/FMA, which Lambda's x86_64 hosts
#                 have; measured 20-30% faster queries). Use LAYER_MARCH=x86-64 for a portable build.
#   LAYER_OUT     output directory (default layers/hnswlib/build)
#   LAYER_SKIP_APT=1  never call apt-get (fail if g++-11 is missing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${LAYER_OUT:-$HERE/build}"
MARCH="${LAYER_MARCH:-x86-64-v3}"
VERSION="3.0.0"
START=$(date +%s)

log() { printf '[build:layer] %s\n' "$*" >&2; }

if [ "$(uname -m)" != "x86_64" ]; then
  log "this script builds the x86_64 layer and must run on an x86_64 Linux host (got $(uname -m))"
  exit 1
fi

# 1. The compiler: Debian's g++-11 (installed if missing).
if ! command -v g++-11 >/dev/null 2>&1; then
  if [ "${LAYER_SKIP_APT:-0}" = "1" ]; then
    log "g++-11 is not installed and LAYER_SKIP_APT=1"
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  log "installing g++-11 (apt-get update && apt-get install g++-11)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends g++-11 >/dev/null
fi
log "compiler: $(g++-11 --version | head -n1)"

# 2. node-gyp: the copy bundled with npm (npm exports its path to scripts as npm_config_node_gyp).
NODE_GYP="${npm_config_node_gyp:-}"
if [ -z "$NODE_GYP" ] || [ ! -f "$NODE_GYP" ]; then
  NPM_DIR="$(dirname "$(readlink -f "$(command -v npm)")")/.."
  NODE_GYP="$NPM_DIR/node_modules/node-gyp/bin/node-gyp.js"
fi
if [ ! -f "$NODE_GYP" ]; then
  log "node-gyp not found (looked at $NODE_GYP)"
  exit 1
fi

# 3. Node headers from /usr (no download).
NODEDIR="${LAYER_NODEDIR:-/usr}"
if [ ! -f "$NODEDIR/include/node/node_api.h" ] || [ ! -f "$NODEDIR/include/node/common.gypi" ]; then
  log "node headers not found under $NODEDIR/include/node (Debian: apt-get install libnode-dev)"
  exit 1
fi

# 4. The sources: the copy in node_modules, or npm pack as a fallback.
SRC_PKG="$ROOT/node_modules/hnswlib-node"
WORK="$(mktemp -d -t vicinity-layer-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
if [ -f "$SRC_PKG/package.json" ] && [ "$(node -p "require('$SRC_PKG/package.json').version")" = "$VERSION" ]; then
  mkdir -p "$WORK/hnswlib-node"
  cp -R "$SRC_PKG/package.json" "$SRC_PKG/binding.gyp" "$SRC_PKG/src" "$SRC_PKG/lib" "$SRC_PKG/LICENSE.txt" \
    "$WORK/hnswlib-node/"
else
  log "node_modules/hnswlib-node@$VERSION not found; fetching it with npm pack"
  (cd "$WORK" && npm pack --silent "hnswlib-node@$VERSION" >/dev/null && tar -xzf "hnswlib-node-$VERSION.tgz" &&
    mv package hnswlib-node)
fi
PKG="$WORK/hnswlib-node"
# binding.gyp asks node-addon-api for its include dir; make it resolvable from the build copy.
mkdir -p "$PKG/node_modules"
cp -R "$ROOT/node_modules/node-addon-api" "$PKG/node_modules/"

# 5. Compile.
log "compiling hnswlib-node $VERSION (-march=$MARCH, static libstdc++/libgcc)"
(
  cd "$PKG"
  export CC=gcc-11 CXX=g++-11 LINK=g++-11
  export CXXFLAGS="-O3 -march=$MARCH"
  export CFLAGS="-O3 -march=$MARCH"
  export LDFLAGS="-static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL"
  node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --jobs="$(nproc)" --loglevel=warn >"$WORK/gyp.log" 2>&1 || {
    cat "$WORK/gyp.log" >&2
    exit 1
  }
)
ADDON="$PKG/build/Release/addon.node"
strip --strip-unneeded "$ADDON"

# 6. Lay out the layer (only what runs: no sources, no object files).
rm -rf "$OUT"
MODS="$OUT/nodejs/node_modules"
mkdir -p "$MODS/hnswlib-node/build/Release"
cp -R "$PKG/package.json" "$PKG/lib" "$PKG/LICENSE.txt" "$MODS/hnswlib-node/"
cp "$ADDON" "$MODS/hnswlib-node/build/Release/addon.node"
for dep in bindings file-uri-to-path; do
  mkdir -p "$MODS/$dep"
  (cd "$ROOT/node_modules/$dep" && find . -maxdepth 1 -type f \( -name '*.js' -o -name 'package.json' -o -name 'LICENSE*' \) \
    -exec cp {} "$MODS/$dep/" \;)
done
cat >"$OUT/nodejs/layer-info.json" <<EOF
{
  "package": "hnswlib-node@$VERSION",
  "compiler": "$(g++-11 --version | head -n1)",
  "march": "$MARCH",
  "ldflags": "-static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL",
  "nodeHeaders": "$(node -p "process.versions.node") ($NODEDIR/include/node)",
  "addonSha256": "$(sha256sum "$MODS/hnswlib-node/build/Release/addon.node" | cut -d' ' -f1)"
}
EOF

# 7. The symbol check (fails the build if the addon would not load on Amazon Linux 2023).
"$ROOT/node_modules/.bin/tsx" "$HERE/check-symbols.ts" "$MODS/hnswlib-node/build/Release/addon.node"

log "layer ready at $OUT ($(du -sh "$OUT" | cut -f1), $(($(date +%s) - START)) s)"
