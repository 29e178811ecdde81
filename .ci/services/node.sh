# Node.js and Tinybird's npm clients for tests/compat/test_node_clients.py (sourced by
# .ci/run): Debian's nodejs and npm when `node` is missing, then `@tinybirdco/sdk` and
# `@tinybirdco/flock.js` installed once into a cache folder whose path the tests read
# from RTP_NODE_MODULES. Nothing to start: the tests run node themselves.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y -q nodejs npm >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q nodejs npm >/dev/null; }
fi
RTP_NODE_DIR="${RTP_NODE_DIR:-/tmp/rtp-node}"
if [ ! -d "$RTP_NODE_DIR/node_modules/@tinybirdco/sdk" ] \
  || [ ! -d "$RTP_NODE_DIR/node_modules/@tinybirdco/flock.js" ]; then
  echo "installing @tinybirdco/sdk and @tinybirdco/flock.js into $RTP_NODE_DIR"
  mkdir -p "$RTP_NODE_DIR"
  [ -f "$RTP_NODE_DIR/package.json" ] || echo '{"private": true}' >"$RTP_NODE_DIR/package.json"
  (cd "$RTP_NODE_DIR" && npm install --silent --no-audit --no-fund \
    @tinybirdco/sdk @tinybirdco/flock.js >/dev/null)
fi
export RTP_NODE_MODULES="$RTP_NODE_DIR/node_modules"
echo "node $(node --version); $(ls "$RTP_NODE_MODULES/@tinybirdco" | tr '\n' ' ')"
