#!/usr/bin/env bash
# Runs one of the JavaScript end-to-end tests of `frugal serve` (tests/serve/js):
#
#   scripts/serve_js_test.sh BUILD_DIR openai   # the official OpenAI Node client against the server
#   scripts/serve_js_test.sh BUILD_DIR page     # the chat page in headless Chromium (playwright-core)
#
# BUILD_DIR holds src/cli/frugal; the model is models/tiny-v4 (override with FRUGAL_MODEL).
# The npm packages are installed with `npm ci` from package-lock.json into tests/serve/js/node_modules
# when that folder is missing or was installed from another lockfile (a sha256 stamp inside it);
# a lock serialises installs when ctest runs both tests at once. The test runs with TMPDIR set to a
# private folder, removed on exit; it is kept (and its path printed) when the test fails, since
# it holds the page test's failure screenshot. Exit status: the test's.
set -euo pipefail

if [ $# -ne 2 ] || { [ "$2" != openai ] && [ "$2" != page ]; }; then
  echo "usage: $0 BUILD_DIR openai|page" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
js="$repo/tests/serve/js"
bin="$build_dir/src/cli/frugal"
case "$2" in
  openai) script=openai_client_test.mjs ;;
  page) script=chat_page_test.mjs ;;
esac

command -v node >/dev/null || { echo "serve_js_test: node not found (Node.js 20+ is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "serve_js_test: npm not found" >&2; exit 1; }
[ -x "$bin" ] || { echo "serve_js_test: $bin not found; build first" >&2; exit 1; }

# Install the packages when missing or stale. flock keeps two tests from running npm ci together.
want=$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)
stamp="$js/node_modules/.package-lock.sha256"
(
  flock 9
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "serve_js_test: npm ci in tests/serve/js"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
) 9>"$js/.npm-install.lock"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/frugal-serve-js.XXXXXX")
status=0
# Removes $tmp; first stops any process still using it (a browser helper outliving the test), and
# retries, since a process that exits while rm runs can leave a directory "not empty".
cleanup() {
  if [ "$status" -ne 0 ]; then
    echo "serve_js_test: kept $tmp" >&2
    return
  fi
  pkill -KILL -f -- "$tmp" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$tmp" 2>/dev/null && [ ! -e "$tmp" ] && return
    sleep 0.2
  done
  echo "serve_js_test: could not remove $tmp" >&2
}
trap cleanup EXIT

cd "$js"
TMPDIR="$tmp" FRUGAL_BIN="$bin" FRUGAL_MODEL="${FRUGAL_MODEL:-$repo/models/tiny-v4}" \
  node "$script" || status=$?
exit "$status"
