"""BLAS threads of the simulation: the world's ticks run numpy's BLAS on one thread.

Why one: the matrix products of a tick are small (a page round of users
times the catalog), so a second BLAS thread gains little on an idle machine
and costs 2-3x where the cores are busy (several runs or test suites side by
side: OpenBLAS threads wait for each other; `benchmarks/bench_world.py`, mf at
10,000 users, 12k vs 26k decisions/s at load 3). And a float32 product's last
bits depend on how many threads OpenBLAS splits it over, so a run on a
16-core machine, a 2-core machine and a Ray worker (started with one thread)
would otherwise differ; with one thread everywhere they match (the same
OpenBLAS kernels assumed). Only the world's own ticks are limited: the
caller's training loop (torch, SB3) keeps its threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_controller: Any = None
_depth = 0  # one_blas_thread blocks open in this process (an inner one changes nothing)


def _blas_controller() -> Any:
    # Built once: inspecting the loaded libraries costs ~0.7 ms, entering a limit ~0.05 ms.
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS limited to one thread (restored after).

    Inside another such block it does nothing: setting OpenBLAS's threads costs
    about 0.1 ms a library each way, paid per tick otherwise (``World.run``
    holds one block over all its ticks).
    """
    global _depth
    if _depth:
        yield
        return
    with _blas_controller().limit(limits=1):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
