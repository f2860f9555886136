#!/usr/bin/env bash
# Configures and builds fmg in ./build (CUDA when nvcc is found, sm_80 and
# sm_90). Extra arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
