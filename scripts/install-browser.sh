#!/bin/sh
# Install Debian's Chromium for the browser test of the search page, when it is missing and
# this machine can install it (root and apt-get). Never fails: without Chromium that one
# test skips and says why.
set -u

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM is already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get on this machine; install Chromium yourself to run the browser test (it skips until then)"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-browser: not root; run 'sudo apt-get install -y chromium' to run the browser test (it skips until then)"
    exit 0
fi

echo "install-browser: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
    echo "install-browser: installed $(command -v chromium || echo chromium)"
else
    echo "install-browser: apt-get could not install chromium (offline or no such package); the browser test will skip"
fi
exit 0
