"""Which of a list of files are Amigo manifests, judged by content (for the pre-commit hook).

pre-commit passes every changed YAML file (workflows, compose files, the pre-commit
config itself); validating those as manifests would fail on files that were never
meant to be manifests. A manifest names `apiVersion: amigo.ai/...` at the start of a
line; any version counts, so a wrong version is still validated and reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from reconciler.sniff import read_head

_API_VERSION = re.compile(rb"^apiVersion:\s*[\"']?amigo\.ai/", re.MULTILINE)
# The project file (reconciler.yaml) under another name: its two required top-level keys.
_PROJECT_KEYS = (
    re.compile(rb"^version:", re.MULTILINE),
    re.compile(rb"^environments:", re.MULTILINE),
)
PROJECT_NAMES = ("reconciler.yaml", "reconciler.yml")
SNIFF_BYTES = 65_536


def looks_like_manifest(path: str | Path) -> bool:
    """A regular file whose first SNIFF_BYTES hold an Amigo apiVersion line."""
    head = read_head(path, SNIFF_BYTES)
    return head is not None and _API_VERSION.search(head) is not None


def manifest_paths(paths: Sequence[str]) -> list[str]:
    """`paths` without the files that are not manifests (directories are kept: their
    walk reads only `*.yaml` / `*.yml`, and every one of those must be a manifest)."""
    return [p for p in paths if Path(p).is_dir() or looks_like_manifest(p)]


def looks_like_project(path: str | Path) -> bool:
    """The project file: named reconciler.yaml, or a regular file whose top level has
    both `version:` and `environments:` (and no Amigo apiVersion: that is a manifest)."""
    if Path(path).is_dir():
        return False
    if Path(path).name in PROJECT_NAMES:
        return True
    head = read_head(path, SNIFF_BYTES)
    return (
        head is not None
        and all(key.search(head) for key in _PROJECT_KEYS)
        and _API_VERSION.search(head) is None
    )
