"""The world's ticks and builds run numpy's BLAS on one thread; the caller's threads come back after."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from recworld.threads import one_blas_thread


def _blas_threads() -> int:
    # numpy's own OpenBLAS (the one its matrix products use; scipy may load another).
    return max(int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"])


def test_one_blas_thread_limits_and_restores():
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2
        with one_blas_thread():
            assert _blas_threads() == 1
        assert _blas_threads() == 2


def test_an_inner_block_keeps_one_thread_and_the_outer_restores():
    with threadpool_limits(limits=2, user_api="blas"):
        with one_blas_thread():
            with one_blas_thread():
                assert _blas_threads() == 1
            assert _blas_threads() == 1  # the inner block's end does not restore
        assert _blas_threads() == 2
        with one_blas_thread():  # and a later block limits again
            assert _blas_threads() == 1
        assert _blas_threads() == 2


def test_world_ticks_with_one_blas_thread(make_world):
    world = make_world(n=30, recommender="mf")
    seen_threads: list[int] = []
    recommend = world.recommender.recommend

    def spy(users, k, context):
        seen_threads.append(_blas_threads())
        return recommend(users, k, context)

    world.recommender.recommend = spy
    with threadpool_limits(limits=2, user_api="blas"):
        world.run(3)
        assert _blas_threads() == 2
        world.step()  # a step alone (as the envs take them) limits too
        assert _blas_threads() == 2
    assert seen_threads and set(seen_threads) == {1}
    assert np.isfinite(world.recommender.P).all()
