#!/usr/bin/env bash
# Test setup: install Debian's chromium (for the HTML report test) when it is missing. Needs root or sudo and the
# Debian package archive; does nothing when chromium is already there.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing chromium for the report test ..."
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
