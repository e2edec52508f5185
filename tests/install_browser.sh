#!/usr/bin/env bash
# Part of README.md's test command (and .ci/run): the HTML-report screenshot test
# (tests/test_report_html.py) renders report.html in Debian's `chromium`; install it when missing,
# so the test command runs every test. Never downloads a browser build of its own.
#   - root: apt-get install chromium; otherwise through sudo (it may ask for your password);
#   - cannot install: stop with the one extra step to take, or set EVALKIT_SKIP_BROWSER=1 to run
#     the suite with that one test skipped (CI=true: a warning, the test then skips with a reason).
set -u
if command -v chromium >/dev/null 2>&1 || [ -x "${EVALKIT_CHROMIUM:-/usr/bin/chromium}" ]; then
  exit 0
fi
if [ "${EVALKIT_SKIP_BROWSER:-}" = "1" ]; then
  echo "EVALKIT_SKIP_BROWSER=1: the report screenshot test will be skipped" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
  echo "installing Debian's chromium for the report screenshot test ..." >&2
  if $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; then
    exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "warning: could not install chromium; the report screenshot test will be skipped" >&2
  exit 0
fi
echo "error: the report screenshot test needs Chromium: install it (Debian/Ubuntu: sudo apt-get install chromium) and rerun, or set EVALKIT_SKIP_BROWSER=1 to skip that one test" >&2
exit 1
