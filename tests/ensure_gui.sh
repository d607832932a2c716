#!/usr/bin/env bash
# Test setup: the napari plugin's tests run Qt on a virtual screen (Xvfb; pytest-xvfb starts it). This installs
# Debian's Xvfb and the X libraries Qt 6's xcb platform needs when any is missing. Needs root or sudo and the
# Debian package archive; does nothing when all are there.
set -euo pipefail
PACKAGES="xvfb xauth libgl1 libegl1 libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1
  libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1"
# shellcheck disable=SC2086
dpkg -s $PACKAGES >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Xvfb and Qt's X libraries for the napari plugin tests ..."
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
Xvfb -help >/dev/null 2>&1 && echo "Xvfb ready"
