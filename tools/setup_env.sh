#!/usr/bin/env bash
# Creates (or reuses) the virtual environment that `make demo` and `make test` run in.
# Each step runs only when what it installs is missing, so a second run takes seconds.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
WHEEL_CACHE=${MMSAAL_WHEEL_CACHE:-$HOME/.cache/mmsaal/wheels}

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
todo=$(missing "setuptools==80.9.0" wheel "torch==2.13.0")
[ -z "$todo" ] || "${PIP[@]}" $todo

# mmcv ships only an sdist: build it with its ops once, keep the wheel, reuse it.
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  mkdir -p "$WHEEL_CACHE"
  if ! ls "$WHEEL_CACHE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "Building mmcv 2.1.0 with ops from source: about 15-25 minutes on 2 cores, once (the wheel is cached) ..."
    # mmcv 2.1.0's setup.py only builds with setuptools<70; the runtime pin comes back right after.
    "$PY" -m pip install --disable-pip-version-check -q "setuptools<70"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel --disable-pip-version-check \
      -q --no-build-isolation --no-deps mmcv==2.1.0 -w "$WHEEL_CACHE"
    "${PIP[@]}" setuptools==80.9.0
  fi
  "${PIP[@]}" "$WHEEL_CACHE"/mmcv-2.1.0-*.whl
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
(cd / && "$PY" -W ignore -c "import mmsaal, mmdet.models, mmseg.models")
