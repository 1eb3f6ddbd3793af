"""Held-out evaluation and the threaded map that renders views / frames on several CPU threads."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from splatent_viewer.data.scene import load_scene
from splatent_viewer.evaluation import evaluate_views, threaded_map


def test_threaded_map_keeps_order_runs_concurrently_and_restores_threads():
    threads_before = torch.get_num_threads()
    seen_threads, seen_torch_threads, grad_modes = set(), set(), set()

    def work(x: int) -> int:
        seen_threads.add(threading.get_ident())
        seen_torch_threads.add(torch.get_num_threads())
        grad_modes.add(torch.is_grad_enabled())
        time.sleep(0.02 * (5 - x % 5))  # later items finish first
        return x * x

    assert list(threaded_map(work, range(12), workers=2)) == [x * x for x in range(12)]
    assert len(seen_threads) == 2 and threading.get_ident() not in seen_threads
    assert seen_torch_threads == {max(1, threads_before // 2)}
    assert grad_modes == {False}
    assert torch.get_num_threads() == threads_before
    assert list(threaded_map(work, [3, 1], workers=1)) == [9, 1]  # one worker: in this thread


def test_threaded_map_raises_the_first_error_in_order_and_stops_early():
    threads_before = torch.get_num_threads()
    started = []

    def work(x: int) -> int:
        started.append(x)
        if x == 2:
            raise ValueError("bad item 2")
        return x

    it = threaded_map(work, range(100), workers=2)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(ValueError, match="bad item 2"):
        next(it)
    assert len(started) < 20  # bounded look-ahead, the rest never started
    assert torch.get_num_threads() == threads_before
    # Abandoning the iteration early also gives the threads back.
    it = threaded_map(work, range(100, 200), workers=2)
    next(it)
    it.close()
    assert torch.get_num_threads() == threads_before


def test_evaluation_on_two_workers_matches_one(tiny_scene_dir, tiny_trained_scene_dir):
    from splatent_viewer.trained import load_trained_scene

    scene = load_scene(tiny_scene_dir)
    trained = load_trained_scene(tiny_trained_scene_dir, refiner="none")
    views = [*scene.split_indices["val"].tolist(), 0, 5]  # held out + two training views: more than the workers
    one = list(evaluate_views(scene=scene, indices=views, trained=trained, workers=1))
    two = list(evaluate_views(scene=scene, indices=views, trained=trained, workers=2))
    assert [e.metrics["view"] for e in two] == views
    for a, b in zip(one, two):
        assert a.metrics.keys() == b.metrics.keys()
        for k in a.metrics:
            assert a.metrics[k] == pytest.approx(b.metrics[k], abs=1e-3), k
        torch.testing.assert_close(a.decoded, b.decoded, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(a.rgb, b.rgb, atol=1e-4, rtol=1e-4)
    assert not any(e.decoded.requires_grad for e in two)
