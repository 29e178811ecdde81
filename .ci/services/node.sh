# Node.js and Tinybird's npm clients for tests/compat/test_node_clients.py and
# test_flock_browser.py (sourced by .ci/run): Debian's nodejs and npm when `node` is
# missing, then `@tinybirdco/sdk` and `@tinybirdco/flock.js` at the versions the tests were
# written against, installed once into a cache folder whose path the tests read from
# RTP_NODE_MODULES. Nothing to start: the tests run node and the browser themselves.
RTP_NODE_PACKAGES="@tinybirdco/sdk@0.0.84 @tinybirdco/flock.js@1.4.1"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm  # .ci/run's installer: updates the package index once
fi
RTP_NODE_DIR="${RTP_NODE_DIR:-/tmp/rtp-node}"
if [ "$(cat "$RTP_NODE_DIR/.installed" 2>/dev/null)" != "$RTP_NODE_PACKAGES" ]; then
  echo "installing $RTP_NODE_PACKAGES into $RTP_NODE_DIR"
  mkdir -p "$RTP_NODE_DIR"
  [ -f "$RTP_NODE_DIR/package.json" ] || echo '{"private": true}' >"$RTP_NODE_DIR/package.json"
  # shellcheck disable=SC2086  # one word per package
  (cd "$RTP_NODE_DIR" && npm install --silent --no-audit --no-fund $RTP_NODE_PACKAGES >/dev/null)
  echo "$RTP_NODE_PACKAGES" >"$RTP_NODE_DIR/.installed"
fi
export RTP_NODE_MODULES="$RTP_NODE_DIR/node_modules"
echo "node $(node --version); $(cat "$RTP_NODE_DIR/.installed" 2>/dev/null)"
