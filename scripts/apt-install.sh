#!/bin/sh
# Install a Debian package when its command is missing and this machine can install it (root
# and apt-get). Never fails: what needs the command skips or falls back, and says why.
#
#   sh scripts/apt-install.sh COMMAND PACKAGE "what needs it"
set -u

cmd="$1"
pkg="$2"
why="$3"

if command -v "$cmd" >/dev/null 2>&1; then
    echo "apt-install: $cmd is already installed ($why)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-install: no apt-get on this machine; install $pkg yourself for $why"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "apt-install: not root; run 'sudo apt-get install -y $pkg' for $why"
    exit 0
fi

echo "apt-install: installing Debian's $pkg package for $why"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null; then
    echo "apt-install: installed $(command -v "$cmd" || echo "$cmd")"
else
    echo "apt-install: apt-get could not install $pkg (offline or no such package); $why will not run"
fi
exit 0
