#!/usr/bin/env bash
# Creates (or reuses) the virtual environment that `make demo` and `make test` run in.
# Each step runs only when what it installs is missing, so a second run takes seconds.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
TORCH=2.14.1
TORCHVISION=0.29.1
# The mmcv wheel's ops are compiled against one torch: its cache is per torch.
WHEEL_CACHE=${MMSAAL_WHEEL_CACHE:-$HOME/.cache/mmsaal/wheels}/torch-$TORCH

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# Absolute, so that the checks run from / below find it.
PY="$(cd "$VENV" && pwd)/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt)

# Prints the names of the requirements that are not installed at the wanted version.
missing() {
  "$PY" - "$@" <<'PYEOF'
import sys
from importlib import metadata

from packaging.requirements import Requirement

for line in sys.argv[1:]:
    req = Requirement(line)
    try:
        ok = req.specifier.contains(metadata.version(req.name), prereleases=True)
    except metadata.PackageNotFoundError:
        ok = False
    if not ok:
        print(line)
PYEOF
}

"$PY" -c "import packaging" 2>/dev/null || "${PIP[@]}" packaging
todo=$(missing "setuptools==80.9.0" wheel "torch==$TORCH" "torchvision==$TORCHVISION")
[ -z "$todo" ] || "${PIP[@]}" $todo

# mmcv ships only an sdist: build it with its ops once per torch, keep the wheel, reuse it.
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  mkdir -p "$WHEEL_CACHE"
  if ! ls "$WHEEL_CACHE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "Building mmcv 2.1.0 with ops from source against torch $TORCH: about 10 minutes on 2 cores, once (the wheel is cached in $WHEEL_CACHE) ..."
    src=$(mktemp -d)
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist alone and would hand
    # back a wheel built against another torch.
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-cache-dir mmcv==2.1.0 -d "$src"
    tar -xzf "$src"/mmcv-2.1.0.tar.gz -C "$src"
    # torch 2.14's headers need C++20; mmcv 2.1.0 compiles its ops as C++17.
    "$PY" - "$src/mmcv-2.1.0/setup.py" <<'PYEOF'
import sys
path = sys.argv[1]
text = open(path).read()
old = "                extra_compile_args['cxx'] = ['-std=c++17']"
if text.count(old) != 1:
    sys.exit(f'{path}: the C++ standard flag is not where mmcv 2.1.0 has it')
open(path, 'w').write(text.replace(old, old.replace('c++17', 'c++20')))
PYEOF
    # mmcv 2.1.0's setup.py only builds with setuptools<70, which torch's metadata refuses
    # (setuptools>=77): swapped in for the build alone, without a resolver pass (--no-deps),
    # so pip reports no conflict for the moment it is there.
    "$PY" -m pip install --disable-pip-version-check -q --no-deps "setuptools<70"
    (cd "$src/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel \
      --disable-pip-version-check -q --no-build-isolation --no-deps --no-cache-dir . -w "$WHEEL_CACHE")
    "$PY" -m pip install --disable-pip-version-check -q --no-deps setuptools==80.9.0
    rm -rf "$src"
  fi
  "${PIP[@]}" "$WHEEL_CACHE"/mmcv-2.1.0-*.whl
  # A wheel built for another torch fails here, not in the middle of a run.
  "$PY" -c "import mmcv.ops" || {
    echo "the cached $WHEEL_CACHE/mmcv-2.1.0 wheel does not load beside torch $TORCH: delete it and run this again" >&2
    exit 1
  }
fi

mapfile -t wanted < <(grep -hv '^\s*#' requirements/runtime.txt requirements/tests.txt | sed '/^\s*$/d')
todo=$(missing "${wanted[@]}")
[ -z "$todo" ] || "${PIP[@]}" $todo

# Checked from outside the checkout: from inside it, the working directory
# alone makes mmsaal importable and would hide a missing install.
if ! (cd / && "$PY" -c "import sys, mmsaal; sys.exit(mmsaal.__file__ != '$PWD/mmsaal/__init__.py')") 2>/dev/null; then
  "${PIP[@]}" --no-deps -e .
fi

# The first import writes caches next to the packages (yapf's grammar
# pickles, imported by mmengine's Config): write them now, before parallel
# test workers import at the same moment and read a half-written file.
(cd / && "$PY" -W ignore -c "import mmsaal, mmdet.models, mmseg.models, mmpretrain.models")
