#!/usr/bin/env bash
# Installs the Debian packages and Python modules that fmg needs, skipping
# whatever is already present. Safe to run repeatedly.
set -euo pipefail

packages=(
  cmake g++ make
  libeigen3-dev librandom123-dev libcli11-dev nlohmann-json3-dev libboost-dev
  libgtest-dev libbenchmark-dev libomp-dev
)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# numpy and matplotlib draw the figures; the C++ build and tests of the
# sampler itself do not need Python.
if ! python3 -c "import numpy, matplotlib" 2>/dev/null; then
  echo "install-deps: installing numpy and matplotlib" >&2
  python3 -m pip install --quiet --disable-pip-version-check numpy matplotlib
fi
