"""Sweeps: one scenario over many seeds x recommenders, run as Ray tasks (or in this process), into one database.

Every run of a sweep is planned up front (a Run row, status ``created``, named
``sweep:<name>``), then each is run by :func:`run_planned` — in a Ray worker or
in this process, the same function either way — so a sweep's runs are exactly
the runs ``recworld run`` makes with the same scenario, seed and recommender.
The comparison (mean and 95% interval over seeds per recommender) is read back
from the database by :func:`recworld.storage.queries.sweep_comparison`, the
same query the dashboard's compare page uses.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from recworld.errors import ConfigError, RecWorldError
from recworld.scenarios.schema import Scenario, validate
from recworld.storage import connect
from recworld.storage.db import normalise_url, redact
from recworld.storage.queries import sweep_run_name, sweep_runs
from recworld.storage.recorder import set_status

RAY_EXTRA = "pip install 'recworld[ray]'"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
MAX_RUNS = 10_000


@dataclass(frozen=True)
class Job:
    """One planned run of a sweep."""

    run_id: int
    recommender: str
    seed: int
    config: dict[str, Any]  # the scenario, as stored with the run


@dataclass
class JobResult:
    """What a finished job reports back (the run itself is in the database)."""

    run_id: int
    recommender: str
    seed: int
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0  # wall time of the run
    cpu_seconds: float = 0.0  # CPU time of the process that ran it, all threads, during the run


def parse_seeds(spec: str) -> list[int]:
    """Seeds from ``"0-31"``, ``"0,1,2"`` or a mix (``"0-3,10"``), in order, without repeats.

    Raises:
        ConfigError: an empty or malformed list, a reversed range or a negative seed.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)|(\d+)", part)
        if m is None:
            raise ConfigError(f"--seeds: cannot read {part!r}; use a range such as 0-31, a list such as 0,1,2, or both (0-3,10)")
        if m.group(3) is not None:
            seeds.append(int(m.group(3)))
            continue
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ConfigError(f"--seeds: range {part!r} runs backwards; write it as {hi}-{lo}")
        if hi - lo >= MAX_RUNS:
            raise ConfigError(f"--seeds: range {part!r} has more than {MAX_RUNS:,} seeds")
        seeds.extend(range(lo, hi + 1))
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise ConfigError("--seeds is empty; pass e.g. --seeds 0-31 or --seeds 0,1,2")
    return seeds


def parse_recommenders(spec: str) -> list[str]:
    """Recommender names from ``"random,popularity,mf"`` (order kept, repeats dropped)."""
    names = list(dict.fromkeys(n.strip() for n in str(spec).split(",") if n.strip()))
    if not names:
        raise ConfigError("--recommenders is empty; pass e.g. --recommenders random,popularity,mf,linucb")
    return names


def check_name(name: str) -> str:
    """A valid sweep name (letters, digits, ``. _ : -``; at most 100 characters), else a ConfigError."""
    if not _NAME.match(name):
        raise ConfigError(f"sweep name {name!r}: use 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
    return name


def scenarios_of(base: Scenario, seeds: Sequence[int], recommenders: Sequence[str]) -> list[Scenario]:
    """The sweep's scenarios, seed-major (every recommender of seed 0, then of seed 1, ...).

    Each is validated here, so an unknown recommender or a bad seed fails before anything runs.
    """
    if len(seeds) * len(recommenders) > MAX_RUNS:
        raise ConfigError(f"a sweep of {len(seeds)} seeds x {len(recommenders)} recommenders is over {MAX_RUNS:,} runs; split it")
    return [base.with_overrides(**{"seed": s, "recommender.name": r}) for s in seeds for r in recommenders]


def absolute_url(db_url: str) -> str:
    """The database URL with a relative SQLite path made absolute (workers may not share the driver's directory)."""
    url = normalise_url(db_url)
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url and url != prefix:
        return prefix + os.path.abspath(url[len(prefix) :])
    return url


def check_plan(base: Scenario, seeds: Sequence[int], recommenders: Sequence[str], db_url: str, name: str) -> list[Scenario]:
    """Validate the grid and the name (free in the database) without writing anything; the sweep's scenarios.

    Raises:
        ConfigError: a bad name, an unknown recommender, or a sweep of that name already in the database.
    """
    check_name(name)
    scenarios = scenarios_of(base, seeds, recommenders)
    existing = sweep_runs(connect(db_url), name)
    if existing:
        raise ConfigError(f"a sweep named {name!r} already has {len(existing)} runs in {redact(db_url)}; choose another --name")
    return scenarios


def plan(base: Scenario, seeds: Sequence[int], recommenders: Sequence[str], db_url: str, name: str) -> list[Job]:
    """Validate the grid (:func:`check_plan`) and insert one Run row per (seed, recommender), status ``created``."""
    from recworld.scenarios.runner import plan_run

    scenarios = check_plan(base, seeds, recommenders, db_url, name)
    engine = connect(db_url)
    run_name = sweep_run_name(name)
    return [Job(plan_run(engine, s, run_name), s.recommender.name, s.seed, s.model_dump(mode="json")) for s in scenarios]


def run_planned(job: Job, db_url: str, cores: int | None = None) -> JobResult:
    """Run one planned job to completion (the body of a Ray task, or of an in-process step).

    Runs are bit-identical to ``recworld run`` on the driver: the world's ticks
    use one BLAS thread wherever they run (:mod:`recworld.threads`), and who
    writes the log does not change what is logged.

    Args:
        cores: the cores the run may use (a Ray task has the one CPU it asked for: under
            ``storage.writer: auto`` its world writes its own log, ``inline``); default: this process's.

    Never raises for a failed run: the failure is recorded on the run and reported back.
    """
    from recworld.scenarios.runner import run_scenario

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        scenario = validate(job.config, source=f"run {job.run_id}")
        out = run_scenario(scenario, db_url=db_url, progress=False, run_id=job.run_id, cores=cores)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - reported to the driver and stored on the run
        msg = str(exc) if isinstance(exc, RecWorldError) else f"{exc.__class__.__name__}: {exc}"
        try:
            set_status(connect(db_url), job.run_id, "failed", error=msg)
        except Exception:  # noqa: BLE001 - the database itself may be the problem; the driver marks it
            pass
        return JobResult(job.run_id, job.recommender, job.seed, "failed", error=msg, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
    return JobResult(job.run_id, job.recommender, job.seed, out.status, out.summary, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)


# ------------------------------------------------------------------ executors
def iter_inprocess(jobs: Sequence[Job], db_url: str) -> Iterator[JobResult]:
    """Run the jobs one after another in this process, yielding each result as it finishes."""
    for job in jobs:
        yield run_planned(job, db_url)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise RecWorldError(
            f"running a sweep on Ray needs the 'ray' extra ({exc.name} missing): {RAY_EXTRA}; or pass --no-ray to run it in this process"
        ) from None
    return ray


@dataclass
class RayCluster:
    """A Ray connection for a sweep: a local Ray started here, or an existing cluster by address.

    Args:
        address: ``None`` starts a local Ray with ``workers`` CPUs; ``"auto"`` joins the
            cluster started on this machine by ``ray start``; ``"ray://host:10001"``
            connects through Ray Client.
        workers: CPUs of a local Ray (default: all cores).
    """

    address: str | None = None
    workers: int | None = None
    started: bool = False
    start_seconds: float = 0.0

    def __enter__(self) -> Any:
        ray = import_ray()
        t0 = time.perf_counter()
        if not ray.is_initialized():
            # Results are small dicts: a small object store; no Ray dashboard on a local sweep.
            kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
            if self.address is None:
                kwargs.update(
                    num_cpus=self.workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    object_store_memory=128 * 1024**2,
                    # Ray starts workers at niceness 15; on a machine shared with other work that
                    # starves the worlds, which should run at the priority `recworld run` has.
                    _system_config={"worker_niceness": 0},
                )
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
                raise RecWorldError(f"cannot connect to Ray at {self.address or 'a new local instance'}: {first}") from None
            self.started = True
        self.start_seconds = time.perf_counter() - t0
        return ray

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            ray.shutdown()


def iter_ray(jobs: Sequence[Job], db_url: str, ray: Any) -> Iterator[JobResult]:
    """Run the jobs as Ray tasks (one CPU each, which their worlds keep to: see :func:`run_planned`), yielding results in the order they finish.

    A task that dies with its worker is reported as a failed run. On an interrupt
    the tasks not yet finished are cancelled.
    """
    task = ray.remote(num_cpus=1, max_retries=0)(run_planned)
    pending = {task.remote(job, db_url, 1): job for job in jobs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
                    yield JobResult(job.run_id, job.recommender, job.seed, "failed", error=f"Ray task failed: {first}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


@dataclass
class SweepOutcome:
    """A finished sweep: its name, database, per-run results and timings."""

    name: str
    db_url: str
    results: list[JobResult]
    seconds: float
    ray_start_seconds: float = 0.0
    mode: str = "in-process"

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status != "completed"]


def run_sweep(
    base: Scenario,
    seeds: Sequence[int],
    recommenders: Sequence[str],
    *,
    db_url: str,
    name: str,
    use_ray: bool = True,
    address: str | None = None,
    workers: int | None = None,
    on_planned: Callable[[list[Job]], None] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> SweepOutcome:
    """Run ``base`` for every seed x recommender into one database.

    Args:
        base: the scenario (its seed and recommender are replaced per run).
        db_url: the one database all runs write (SQLite file or PostgreSQL URL).
        name: the sweep's name; its runs are stored as ``sweep:<name>``.
        use_ray: run the worlds as Ray tasks; ``False`` runs them one by one here.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); None starts a local Ray.
        workers: CPUs of a local Ray.
        on_planned: called once with the planned jobs.
        on_result: called as each run finishes.

    Raises:
        ConfigError: bad grid or name (before any run starts).
        RecWorldError: Ray is needed but not installed, or cannot be reached.
    """
    url = absolute_url(db_url)
    results: list[JobResult] = []
    jobs: list[Job] = []

    def planned() -> list[Job]:
        jobs.extend(plan(base, seeds, recommenders, url, name))
        if on_planned is not None:
            on_planned(jobs)
        return jobs

    t0 = time.perf_counter()
    start_s = 0.0
    try:
        if use_ray:
            import_ray()
            check_plan(base, seeds, recommenders, url, name)  # bad input fails before Ray starts
            cluster = RayCluster(address, workers)
            with cluster as ray:  # and a Ray that cannot start fails before any run is planned
                start_s = cluster.start_seconds
                for res in iter_ray(planned(), url, ray):
                    results.append(res)
                    if on_result is not None:
                        on_result(res)
        else:
            for res in iter_inprocess(planned(), url):
                results.append(res)
                if on_result is not None:
                    on_result(res)
    finally:
        _mark_unfinished(url, jobs, results)
    mode = "in-process" if not use_ray else (f"Ray at {address}" if address else f"local Ray, {workers or os.cpu_count()} workers")
    return SweepOutcome(name, url, results, time.perf_counter() - t0, start_s, mode)


def _mark_unfinished(url: str, jobs: Sequence[Job], results: Sequence[JobResult]) -> None:
    """Runs with no result (interrupted sweep) become ``interrupted``; failures reported by Ray are stored."""
    if not jobs:
        return
    engine = connect(url)
    done = {r.run_id: r for r in results}
    for job in jobs:
        r = done.get(job.run_id)
        if r is None:
            set_status(engine, job.run_id, "interrupted", error="the sweep stopped before this run finished; `recworld resume RUN_ID` continues it")
        elif r.status == "failed" and r.error and r.error.startswith("Ray task failed"):
            set_status(engine, job.run_id, "failed", error=r.error)


__all__ = [
    "Job",
    "JobResult",
    "RayCluster",
    "SweepOutcome",
    "absolute_url",
    "check_name",
    "check_plan",
    "import_ray",
    "iter_inprocess",
    "iter_ray",
    "parse_recommenders",
    "parse_seeds",
    "plan",
    "run_planned",
    "run_sweep",
    "scenarios_of",
]
