#!/usr/bin/env bash
# Fresh machine to first result: installs what is missing, builds, and runs
# the main job, `fmg sample` on the built-in three-atom example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/host/cli/fmg sample
