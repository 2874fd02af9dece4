#!/usr/bin/env bash
# Installs the build dependencies on Debian 12 and builds mwtc into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $(cat .ci/packages.txt)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
