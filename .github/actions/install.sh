#!/usr/bin/env bash
# Install the reconciler from the action's own checkout into one virtualenv per job:
# the dependencies from requirements.lock with --require-hashes (wheels only, nothing
# built), the reconciler itself by path (a .pth file: no build step, no download).
# Used by action.yml; PYTHON is the interpreter actions/setup-python installed.
set -euo pipefail
root="${GITHUB_ACTION_PATH:?}"
venv="${RUNNER_TEMP:?}/amigo-reconciler-venv"
if [ ! -x "$venv/bin/reconciler" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps --only-binary=:all: -r "$root/requirements.lock"
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$root" > "$site/amigo-reconciler.pth"
  printf '#!/bin/sh\nexec "%s/bin/python" -m reconciler "$@"\n' "$venv" > "$venv/bin/reconciler"
  chmod +x "$venv/bin/reconciler"
fi
echo "$venv/bin" >> "${GITHUB_PATH:?}"
"$venv/bin/reconciler" --version
