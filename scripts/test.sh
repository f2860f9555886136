#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with CTest.
# Tests that need a CUDA device skip themselves where none is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
