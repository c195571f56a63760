#!/bin/sh
# Stop with the one command to run when PYTHON cannot create the virtual environment `make` needs:
# Python 3.10 or newer with venv and ensurepip (Debian and Ubuntu ship those two in a separate
# package, python3-venv; its versioned name is python3.X-venv).
#
#   sh scripts/check-python.sh PYTHON
set -u

py="$1"
if ! command -v "$py" >/dev/null 2>&1; then
    echo "make: $py is not installed. On Debian/Ubuntu: sudo apt-get install -y python3 python3-venv" >&2
    exit 1
fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "make: $py is Python $("$py" -c 'import sys; print(sys.version.split()[0])'); infomax needs 3.10 or newer" \
        "(make PYTHON=python3.11 ...)" >&2
    exit 1
fi
if "$py" -c 'import ensurepip, venv; ensurepip.version()' >/dev/null 2>&1; then
    exit 0
fi
version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "make: $py (Python $version) cannot create a virtual environment: its venv/ensurepip modules are missing." >&2
echo "On Debian/Ubuntu install them with:  sudo apt-get install -y python$version-venv" >&2
exit 1
