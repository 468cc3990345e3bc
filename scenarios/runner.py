"""Run a scenario end to end: build the world, log to SQL, show progress, summarise; resume after a crash."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from recworld.checkpoint import Checkpointer, load_world
from recworld.errors import ConfigError, RecWorldError
from recworld.scenarios.build import build_world
from recworld.scenarios.schema import Scenario, validate
from recworld.storage import connect
from recworld.storage.db import redact
from recworld.storage.queries import get_run, last_checkpoint, run_config, run_summary
from recworld.storage.recorder import RunRecorder, choose_writer, create_run, rollback, set_status
from recworld.world import World


@dataclass
class RunOutcome:
    """What a finished (or interrupted) run left behind."""

    run_id: int
    db_url: str
    status: str
    summary: dict[str, Any]
    ticks_done: int


class _StopFlag:
    """Set by SIGINT/SIGTERM: the run finishes its tick, checkpoints and stops."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.stop:  # second Ctrl-C: give up waiting
            raise KeyboardInterrupt
        self.stop = True

    def restore(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


def _loop(
    world: World, recorder: RunRecorder, ticks_total: int, progress: bool, console: Console, stop: _StopFlag, on_tick: Callable[[World], None] | None
) -> int:
    start = world.tick
    if progress:
        bar = Progress(
            TextColumn("[bold]tick"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[kpi]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        task = bar.add_task("run", total=ticks_total, completed=start, kpi="")
        bar.start()
    try:
        while world.tick < ticks_total and not stop.stop:
            world.step()
            if on_tick is not None:
                on_tick(world)
            if progress:
                m = world.last_metrics
                bar.update(
                    task,
                    completed=world.tick,
                    kpi="" if m is None else f"active {m.active_users:>5}  watch {m.watch_rate:.2f}  churned {m.churned_total}",
                )
    finally:
        if progress:
            bar.stop()
    recorder.flush(world)
    return world.tick - start


def run_scenario(
    scenario: Scenario,
    *,
    db_url: str | None = None,
    progress: bool = True,
    console: Console | None = None,
    on_tick: Callable[[World], None] | None = None,
    run_name: str | None = None,
    run_id: int | None = None,
    cores: int | None = None,
) -> RunOutcome:
    """Run ``scenario`` from tick 0 and log it.

    Args:
        run_id: an existing Run row (status ``created``, made by :func:`plan_run`) to
            fill instead of inserting a new one; sweeps plan all their runs up front.
        cores: the cores this run may use, for ``storage.writer: auto``
            (:func:`recworld.storage.recorder.choose_writer`; default: this process's).

    Returns:
        The run id, final status and summary KPIs.
    """
    console = console or Console(stderr=True)
    url = db_url or scenario.storage.url
    engine = connect(url)
    if run_id is not None:
        run = get_run(engine, run_id)
        if run is None or run.status != "created":
            raise ConfigError(f"run {run_id} is not a planned run (status {getattr(run, 'status', 'missing')!r}); it cannot be started again")
    world = build_world(scenario)
    if run_id is None:
        run_id = plan_run(engine, scenario, run_name)
    return _drive(world, scenario, engine, url, run_id, progress, console, on_tick, fresh=True, cores=cores)


def plan_run(engine, scenario: Scenario, run_name: str | None = None) -> int:
    """Insert the Run row of ``scenario`` (status ``created``) and return its id."""
    return create_run(
        engine,
        run_name or scenario.name,
        scenario=scenario.name,
        recommender=scenario.recommender.name,
        brain=scenario.brain.kind,
        seed=scenario.seed,
        config=scenario.model_dump(mode="json"),
        ticks_total=scenario.ticks,
    )


def _drive(
    world: World, scenario: Scenario, engine, url: str, run_id: int, progress: bool, console: Console, on_tick, fresh: bool, cores: int | None = None
) -> RunOutcome:
    st = scenario.storage
    recorder = RunRecorder(
        engine,
        run_id,
        flush_every=st.flush_every,
        snapshot_every=st.snapshot_every,
        checkpointer=Checkpointer(st.checkpoint_delta_share) if st.checkpoint_every else None,
        checkpoint_every=max(1, st.checkpoint_every),
        background=choose_writer(st.writer, world.n_users, cores),
    )
    if fresh:
        recorder.write_world(world)
    else:
        set_status(engine, run_id, "running")
    world.attach_recorder(recorder)
    stop = _StopFlag()
    stop.install()
    try:
        _loop(world, recorder, scenario.ticks, progress, console, stop, on_tick)
    except KeyboardInterrupt:
        recorder.flush(world)
        set_status(engine, run_id, "interrupted")
        raise
    except RecWorldError as exc:
        set_status(engine, run_id, "failed", error=str(exc))
        raise
    except Exception as exc:
        set_status(engine, run_id, "failed", error=f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        stop.restore()
        recorder.close()
        world.close()
    recorder.write_retention(world)
    status = "interrupted" if world.tick < scenario.ticks else "completed"
    summary = run_summary(engine, run_id)
    set_status(engine, run_id, status, summary=summary)
    return RunOutcome(run_id, url, status, summary, world.tick)


def resume_run(
    run_id: int, *, db_url: str, progress: bool = True, console: Console | None = None, on_tick: Callable[[World], None] | None = None
) -> RunOutcome:
    """Continue run ``run_id`` from its last checkpoint.

    Events written after that checkpoint (from a killed process) are deleted
    first, so the resumed log has neither gaps nor duplicates.

    Raises:
        ConfigError: no such run, a completed run, or no checkpoint.
    """
    console = console or Console(stderr=True)
    engine = connect(db_url, create=False)
    run = get_run(engine, run_id)
    if run is None:
        raise ConfigError(f"no run with id {run_id} in {redact(db_url)}; see `recworld runs --db {redact(db_url)}`")
    if run.status == "completed":
        raise ConfigError(f"run {run_id} is already completed; nothing to resume")
    scenario = validate(run_config(run), source=f"run {run_id}")
    ck = last_checkpoint(engine, run_id)
    if ck is None:
        world = build_world(scenario)
        ck_tick = -1
    else:
        ck_tick = ck.tick
        world = load_world(ck.state, ck.base)
        world.reattach_layers()
    rollback(engine, run_id, ck_tick)
    console.print(f"[dim]resuming run {run_id} from tick {ck_tick + 1} of {scenario.ticks}[/]")
    return _drive(world, scenario, engine, db_url, run_id, progress, console, on_tick, fresh=ck is None)
