"""fewer_collections: raises the first-generation threshold while a build runs, then restores it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from reconciler.diagnostics import UserError
from reconciler.gcpause import BUILD_THRESHOLD, fewer_collections
from reconciler.manifests import load_manifests
from reconciler.planner import plan_against


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_threshold_raised_inside_and_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (BUILD_THRESHOLD, 10, 10)
        with fewer_collections():  # nested: still raised
            assert gc.get_threshold()[0] == BUILD_THRESHOLD
        assert gc.get_threshold()[0] == BUILD_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_exception_and_higher_user_thresholds_kept() -> None:
    gc.set_threshold(200_000, 30, 30)
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == (200_000, 30, 30)
        raise RuntimeError("boom")
    assert gc.get_threshold() == (200_000, 30, 30)


def test_overlapping_threads_restore_the_original_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    inside = threading.Barrier(2)
    first_may_leave = threading.Event()

    def first() -> None:
        with fewer_collections():
            inside.wait()
            first_may_leave.wait()

    thread = threading.Thread(target=first)
    thread.start()
    with fewer_collections():
        inside.wait()
        first_may_leave.set()
        thread.join()
        assert gc.get_threshold()[0] == BUILD_THRESHOLD  # the other thread left; we are still in
    assert gc.get_threshold() == (700, 10, 10)


def test_loader_and_planner_run_with_fewer_collections() -> None:
    # Both are wrapped (decorators): the threshold is back to normal once they return.
    gc.set_threshold(700, 10, 10)
    assert getattr(load_manifests, "__wrapped__", None) is not None
    assert getattr(plan_against, "__wrapped__", None) is not None
    with pytest.raises(UserError):
        load_manifests(["/nonexistent/manifests"])
    assert gc.get_threshold() == (700, 10, 10)
