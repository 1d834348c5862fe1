#!/usr/bin/env bash
# Install the reconciler from the action's own checkout into one virtualenv per job:
# the dependencies from requirements.lock with --require-hashes (wheels only, nothing
# built), the reconciler itself by path (a .pth file: no build step, no download).
# Used by action.yml; PYTHON is the interpreter actions/setup-python installed.
# Every Python runs isolated (-I): the working directory is the manifests checkout, and
# with plain `python -m` a yaml.py or click.py there would shadow the tool's modules and
# run with the plan's key. -I also ignores PYTHON* variables (the tool reads none) and the
# user site; the venv's .pth file, which puts the reconciler on the path, still applies.
set -euo pipefail
root="${GITHUB_ACTION_PATH:?}"
venv="${RUNNER_TEMP:?}/amigo-reconciler-venv"
if [ ! -x "$venv/bin/reconciler" ]; then
  "${PYTHON:-python3}" -I -m venv "$venv"
  "$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps --only-binary=:all: -r "$root/requirements.lock"
  site=$("$venv/bin/python" -I -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$root" > "$site/amigo-reconciler.pth"
  printf '#!/bin/sh\nexec "%s/bin/python" -I -m reconciler "$@"\n' "$venv" > "$venv/bin/reconciler"
  chmod +x "$venv/bin/reconciler"
fi
echo "$venv/bin" >> "${GITHUB_PATH:?}"
"$venv/bin/reconciler" --version
