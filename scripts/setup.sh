#!/usr/bin/env bash
# Idempotent set-up of eiplab on a fresh Debian/Ubuntu machine (pip route).
#  1. Debian packages: the KIM API, the OpenKIM models, libxc + OpenBLAS for GPAW, chromium for the
#     widgets' browser tests (apt-get when root).
#  2. A virtual environment in .venv (override with EIPLAB_VENV).
#  3. torch==2.13.0 FIRST (an unpinned torch pulls a multi-GB CUDA build), then the pinned rest
#     (kimpy builds from source against the KIM API: about 5 minutes, once; gpaw is built
#     before them with CC=g++, about 2 minutes, once).
#  4. eiplab itself (editable) and a Jupyter kernel "eiplab" for the venv.
# A finished step is skipped on the next run (a stamp file records the requirements' hash).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${EIPLAB_VENV:-.venv}
PY=${PYTHON:-python3}

need_debs=(libkim-api-dev openkim-models pkg-config libxc-dev libopenblas-dev chromium g++)  # chromium: browser tests, PNG figures; g++: GPAW, kimpy, torch.compile
missing=()
for d in "${need_debs[@]}"; do
  dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    # not root: stop with a one-line hint unless what is missing is already there another way
    # (a KIM API built from source, libxc from elsewhere, or GPAW already built in the venv)
    problems=()
    pkg-config --exists libkim-api 2>/dev/null || problems+=("the KIM API (for kimpy)")
    if ! "${VENV}/bin/python" -c "import gpaw" 2>/dev/null && ! pkg-config --exists libxc 2>/dev/null; then
      problems+=("libxc (for building GPAW)")
    fi
    if [ ${#problems[@]} -gt 0 ]; then
      echo "[setup] Missing: $(IFS=';'; echo "${problems[*]}"). Run once as root:" >&2
      echo "    sudo apt-get install -y ${missing[*]}" >&2
      echo "or use the conda route: conda env create -f environment.yml" >&2
      exit 1
    fi
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# pyxtal-ff's source distribution (PyPI): the tests compare the built-in si-pyxtal with its Si.json
sdist=.cache/pyxtal-ff/pyxtal_ff-0.2.3.tar.gz
if [ ! -f "$sdist" ]; then
  "$VPY" -m pip download -q --no-deps --no-binary :all: pyxtal-ff==0.2.3 -d .cache/pyxtal-ff \
    || echo "[setup] warning: could not fetch pyxtal-ff 0.2.3 from PyPI; its comparison test will skip" >&2
fi
stamp="$VENV/.eiplab-setup-stamp"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment up to date ($VENV)"
  exit 0
fi
"$VPY" -m pip install -q --upgrade pip "setuptools<81" wheel
if ! "$VPY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU build) first"
  "$VPY" -m pip install -q torch==2.13.0
fi
if ! "$VPY" -c "import gpaw, sys; sys.exit(gpaw.__version__ != '26.7.0')" 2>/dev/null; then
  # GPAW's C extension is built with CC=g++ (the tested route); libxc + OpenBLAS from Debian
  echo "[setup] building gpaw==26.7.0 (CC=g++, ~2 min)"
  CC=g++ "$VPY" -m pip install -q gpaw==26.7.0 gpaw-data==1.2.1
fi
echo "[setup] installing pinned requirements (kimpy compiles once, ~5 min)"
"$VPY" -m pip install -q -r requirements.txt
"$VPY" -m pip install -q --no-deps -e .
"$VPY" -m ipykernel install --sys-prefix --name eiplab --display-name "Python (eiplab)" >/dev/null
echo "$want" > "$stamp"
echo "[setup] done: $VENV"
