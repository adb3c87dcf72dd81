#!/usr/bin/env bash
# Install a chrome-headless-shell build (it has HeadlessExperimental.beginFrame, the fast
# deterministic capture path) from the npm package @sparticuz/chromium, and print its path.
#
#   export HELIOS_HEADLESS_SHELL=$(bash scripts/install-headless-shell.sh)
#   helios-render render scene.html out.mp4 --frames 90 --browser "$HELIOS_HEADLESS_SHELL"
#
# Needs node and npm. PREFIX (default /opt/helios-headless-shell) receives the package and the
# unpacked browser.
set -euo pipefail
if ! command -v npm >/dev/null 2>&1; then
  apt-get install -y -qq nodejs npm >&2
fi
prefix="${PREFIX:-/opt/helios-headless-shell}"
mkdir -p "$prefix/unpacked"
if [ ! -d "$prefix/node_modules/@sparticuz/chromium" ]; then
  npm install --silent --no-audit --no-fund --prefix "$prefix" @sparticuz/chromium@147 >&2
fi
# executablePath() unpacks the brotli-compressed build under TMPDIR and returns its path.
cd "$prefix"
TMPDIR="$prefix/unpacked" node -e "
import('@sparticuz/chromium').then((m) => (m.default || m).executablePath())
  .then((p) => console.log(p))
  .catch((e) => { console.error(e); process.exit(1); });
"
