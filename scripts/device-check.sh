#!/usr/bin/env bash
# GPU checks in two steps, for a machine whose GPU is lent for a short time.
#
#   scripts/device-check.sh build      # here: builds for sm_90 and copies the
#                                      # binaries to device-bin/ (ignored by git)
#   scripts/device-check.sh run OUT    # on the GPU machine, from the repository
#                                      # root with device-bin/ carried along
#
# "run" executes the CUDA tests (flow backend against the CPU, Monte Carlo
# cell masses), the flow benchmark on the CUDA backend, a sweep of the flow
# kernel's block size (FMG_CUDA_BLOCK_SIZE) and the OT solve on the Monte
# Carlo CUDA route, and writes logs and JSON records to OUT. Each step has
# its own time limit, so one slow step cannot use up the lease.
set -uo pipefail
cd "$(dirname "$0")/.."

build() {
  set -e
  cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DFMG_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc"
  cmake --build build-device -j "$(nproc)" --target \
    fmg fmg_core_tests fmg_cuda_tests fmg_ot_tests fmg_flow_bench
  rm -rf device-bin
  mkdir -p device-bin
  cp build-device/host/cli/fmg build-device/tests/core/fmg_core_tests \
    build-device/tests/core/fmg_cuda_tests build-device/tests/ot/fmg_ot_tests \
    build-device/bench/flow/fmg_flow_bench device-bin/
  du -sh device-bin
}

# Runs one step with a time limit, logging its output and exit status.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$out/steps.log"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "== $name exit status $?" | tee -a "$out/steps.log"
}

run() {
  out=${1:?usage: scripts/device-check.sh run OUT}
  mkdir -p "$out"
  nvidia-smi >"$out/nvidia-smi.log" 2>&1
  # cuBLAS is linked dynamically (the toolkit ships no static copy small
  # enough to carry): use the device machine's own libcublas.so.13.
  if ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13'; then
    local cublas
    cublas=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13' -print -quit 2>/dev/null)
    if [ -n "$cublas" ]; then
      export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
  fi
  ldd device-bin/fmg >"$out/ldd.log" 2>&1
  # Limits sum to under 10 minutes, leaving room for a rerun in a 15-minute lease.
  step cuda_tests 90 device-bin/fmg_cuda_tests --gtest_output="json:$out/cuda_tests.json"
  step ot_cuda_tests 60 device-bin/fmg_ot_tests --gtest_filter='*Cuda*'
  step flow_dopri5_double 120 device-bin/fmg_flow_bench --backend cuda --quiet \
    --n 1e6,1e7,1e8 --method dopri5 --rtol 1e-8 --atol 1e-10 --out "$out/flow_dopri5_double.jsonl"
  step flow_rk4_float 60 device-bin/fmg_flow_bench --backend cuda --quiet --precision float \
    --n 1e7,1e8 --method rk4 --steps 64 --out "$out/flow_rk4_float.jsonl"
  step flow_scaling 120 device-bin/fmg_flow_bench --backend cuda --quiet --scaling \
    --scaling-n 1e4,1e6,1e8 --scaling-fixed-n 1e6 --out "$out/flow_scaling.jsonl"
  for block in 64 128 192 256 512; do
    step "flow_block_$block" 12 env FMG_CUDA_BLOCK_SIZE=$block device-bin/fmg_flow_bench \
      --backend cuda --quiet --n 1e7 --method dopri5 --rtol 1e-8 --atol 1e-10 \
      --accuracy-samples 100 --out "$out/flow_block_$block.jsonl"
  done
  step ot_monte_carlo 60 device-bin/fmg ot --route mc-cuda --samples 1e9 --quiet \
    --summary "$out/ot_mc_cuda.json"
}

case "${1:-}" in
  build) build ;;
  run) run "${2:-}" ;;
  *) echo "usage: scripts/device-check.sh build | run OUT" >&2; exit 2 ;;
esac
