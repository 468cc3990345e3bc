"""The run recorder: subscribes to a World and writes its events and metrics in batches.

A tick's events, its metrics row and (optionally) a checkpoint are committed
in one transaction, so the database never holds half a tick.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Engine

from recworld.errors import RecWorldError
from recworld.events import EventBatch
from recworld.kpis import TickRecord
from recworld.storage.bulk import insert_rows
from recworld.storage.models import (
    Checkpoint,
    Edge,
    Event,
    Item,
    ItemTick,
    LLMCall,
    MemoryRecord,
    RetentionPoint,
    Run,
    TickMetrics,
    TickSummary,
    UserProfile,
    UserSnapshot,
    UserTick,
    utcnow,
)
from recworld.storage.pagelog import ITEM_TICK_COLUMNS, USER_TICK_COLUMNS, LoggedTick, split_batch
from recworld.storage.summary import SUMMARY_COLUMNS, batch_summary_input, summary_rows

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World


def versions() -> dict[str, str]:
    """Versions of RecWorld and its key dependencies (stored with each run)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("recworld", "numpy", "mesa", "gymnasium", "sqlmodel", "openai", "transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def create_run(
    engine: Engine,
    name: str,
    *,
    scenario: str = "",
    recommender: str = "",
    brain: str = "",
    seed: int = 0,
    config: dict[str, Any] | None = None,
    ticks_total: int = 0,
) -> int:
    """Insert a Run row (status 'created') and return its id."""
    with engine.begin() as con:
        res = con.execute(
            insert(Run).values(
                name=name,
                scenario=scenario,
                recommender=recommender,
                brain=brain,
                seed=seed,
                config_json=json.dumps(config or {}, sort_keys=True, default=str),
                versions_json=json.dumps(versions(), sort_keys=True),
                status="created",
                ticks_total=ticks_total,
                created_at=utcnow(),
                summary_json="{}",
            )
        )
        return int(res.inserted_primary_key[0])


def set_status(engine: Engine, run_id: int, status: str, *, error: str | None = None, summary: dict[str, Any] | None = None) -> None:
    """Update a run's status (and finish time for terminal states)."""
    values: dict[str, Any] = {"status": status}
    if status in ("completed", "failed", "interrupted"):
        values["finished_at"] = utcnow()
    if error is not None:
        values["error"] = error[:2000]
    if summary is not None:
        values["summary_json"] = json.dumps(summary, sort_keys=True, default=float)
    with engine.begin() as con:
        con.execute(update(Run).where(Run.id == run_id).values(**values))


def rollback(engine: Engine, run_id: int, tick: int) -> None:
    """Delete everything run ``run_id`` wrote after tick ``tick``, so that it can continue from ``tick + 1``.

    In one transaction: events (and packed pages), tick metrics, user snapshots, LLM calls,
    memories and checkpoints after ``tick`` are deleted; follow edges created
    after it are deleted and edges removed after it are live again; items
    users created after it are deleted; the run's ``tick_done`` becomes
    ``tick``. ``tick = -1`` removes everything the run wrote (the catalog and
    profiles written at its start stay). Used by resume after a crash.
    """
    with engine.begin() as con:
        for model in (Event, UserTick, ItemTick, TickSummary, TickMetrics, UserSnapshot, LLMCall, MemoryRecord):
            con.execute(delete(model).where(model.run_id == run_id, model.tick > tick))
        con.execute(delete(Edge).where(Edge.run_id == run_id, Edge.created_tick > tick))
        con.execute(update(Edge).where(Edge.run_id == run_id, Edge.removed_tick > tick).values(removed_tick=None))
        # Items of the initial catalog have created_tick 0; only items made during the run go.
        con.execute(delete(Item).where(Item.run_id == run_id, Item.created_tick > tick, Item.created_tick > 0))
        con.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.tick > tick))
        con.execute(update(Run).where(Run.id == run_id, Run.tick_done > tick).values(tick_done=tick))


#: Personas built at a time for the profile rows.
PERSONA_BATCH = 512
PROFILE_COLUMNS = (
    "run_id",
    "user_id",
    "external_id",
    "age",
    "gender",
    "occupation",
    "activity",
    "patience",
    "conformity",
    "diversity_seeking",
    "role",
    "profile_text",
)


class RunRecorder:
    """Writes a world's events, metrics and snapshots to the run database.

    Args:
        engine: the database.
        run_id: the run's id (see :func:`create_run`).
        flush_every: ticks buffered before a write (1 = every tick, the
            durable default; larger batches are faster on big runs).
        snapshot_every: ticks between user-state snapshots (0 = never).
        checkpointer: optional ``f(world)`` whose result is stored as a
            checkpoint in the same transaction as the flushed ticks: the bytes
            of a complete checkpoint, or ``(bytes, base_tick)`` for one that
            applies to the complete checkpoint this recorder stored under
            ``base_tick`` (``recworld.checkpoint.Checkpointer``); that one is
            kept while a kept checkpoint names it.
        background: where the database work happens while the world goes on
            with the next tick (at most two flushes wait in line; each is
            still one transaction with its checkpoint): ``False`` in the
            world's thread (also ``"inline"``); ``True`` or ``"thread"`` a background thread;
            ``"process"`` a writer process of its own, which builds the rows
            and commits them on another core, outside the world's GIL (measured
            0.7x-1.3x of the thread's speed depending on the machine's load:
            README). A database only this process can see (in-memory SQLite)
            is written by a thread. :meth:`flush` waits for
            everything, :meth:`close` stops the writer.
    """

    def __init__(
        self,
        engine: Engine,
        run_id: int,
        flush_every: int = 1,
        snapshot_every: int = 24,
        checkpointer: Callable[[World], bytes | tuple[bytes, int]] | None = None,
        checkpoint_every: int = 1,
        background: bool | Writer = False,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self.snapshot_every = snapshot_every
        self.checkpointer = checkpointer
        self.checkpoint_every = max(1, checkpoint_every)
        self._events: list[tuple[int, EventBatch]] = []
        self._metrics: list[dict[str, Any]] = []
        self._snapshots: list[dict[str, Any]] = []
        self._llm: list[dict[str, Any]] = []
        self._memories: list[dict[str, Any]] = []
        self._edges: list[dict[str, Any]] = []
        self._removed: list[dict[str, Any]] = []
        self._items: list[dict[str, Any]] = []
        self._ticks_buffered = 0
        self.events_written = 0  # Event rows (pages' per-item events and session events are in UserTick rows)
        self.pages_written = 0
        self.last_tick = -1
        self._complete_ticks: set[int] = set()  # where this recorder stored complete checkpoints
        self._error: BaseException | None = None
        self._queue: queue.Queue[_Job | None] | None = None
        self._proc: _WriterProcess | None = None
        if background == "process" and not _shareable(engine):
            background = "thread"
        if background == "process":
            self._proc = _WriterProcess(engine, run_id)
        elif background and background != "inline":
            # SQLite and psycopg release the GIL while they write: the world simulates the next tick meanwhile.
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._writer, name=f"recworld-log-{run_id}", daemon=True)
            self._thread.start()

    # -------------------------------------------------------------- static data
    def write_world(self, world: World) -> None:
        """Write the catalog and user profiles (once, at the start of a run)."""
        cat = world.catalog
        items = [
            {
                "run_id": self.run_id,
                "item_id": i,
                "external_id": cat.external_ids[i],
                "title": cat.titles[i],
                "tags": "|".join(cat.tags[i]),
                "year": int(cat.years[i]) if cat.years[i] > 0 else None,
                "creator": int(cat.creators[i]) if cat.creators[i] >= 0 else None,
                "created_tick": int(cat.created_tick[i]),
            }
            for i in range(len(cat))
        ]
        u = world.users
        traits = np.stack([u.activity, u.patience, u.conformity, u.diversity_seeking], axis=1).astype(np.float64).tolist()
        profiles: list[tuple] = []
        agents = world.user_agents
        # An agent class may build many personas at once (UserAgent.personas_of: a million sampled users' in about a minute).
        many = getattr(type(agents[0]), "personas_of", None) if agents else None
        for s in range(0, len(agents), PERSONA_BATCH):
            chunk = agents[s : s + PERSONA_BATCH]
            personas = many(chunk) if many is not None else [a.persona for a in chunk]
            profiles.extend(self._profile_row(s + j, p, traits) for j, p in enumerate(personas))
        with self.engine.begin() as con:
            con.execute(delete(Item).where(Item.run_id == self.run_id))
            con.execute(delete(UserProfile).where(UserProfile.run_id == self.run_id))
            _bulk(con, Item, items)
            insert_rows(con, "userprofile", PROFILE_COLUMNS, profiles)
            con.execute(update(Run).where(Run.id == self.run_id).values(n_users=world.n_users, n_items=len(cat), status="running"))

    def _profile_row(self, i: int, p: Any, traits: list[list[float]]) -> tuple:
        return (self.run_id, i, p.external_id, p.age, p.gender, p.occupation, *traits[i], p.role, p.profile_text())

    def add_edges(self, edges: Iterable[tuple[int, int, int]]) -> None:
        """Queue follow edges (src, dst, tick) for the next flush."""
        self._edges.extend({"run_id": self.run_id, "src": s, "dst": d, "created_tick": t, "removed_tick": None} for s, d, t in edges)

    def remove_edges(self, edges: Iterable[tuple[int, int, int]]) -> None:
        """Mark follow edges (src, dst, tick) as removed at ``tick`` (unfollows), at the next flush."""
        for s, d, t in edges:
            # An edge created since the last flush is still in the queue: close it there.
            pending = next((e for e in reversed(self._edges) if e["src"] == s and e["dst"] == d and e["removed_tick"] is None), None)
            if pending is not None:
                pending["removed_tick"] = t
            else:
                self._removed.append({"s": s, "d": d, "t": t})

    def add_items(self, rows: Iterable[dict[str, Any]]) -> None:
        """Queue user-created items for the next flush."""
        self._items.extend({"run_id": self.run_id, **r} for r in rows)

    def add_llm_call(self, record: Any) -> None:
        """Queue an LLM call record (an object or dict with the LLMCall fields)."""
        d = (
            record
            if isinstance(record, dict)
            else {
                k: getattr(record, k)
                for k in (
                    "tick",
                    "user_id",
                    "purpose",
                    "model",
                    "tokens_in",
                    "tokens_out",
                    "latency_ms",
                    "cached",
                    "retries",
                    "fell_back",
                    "error",
                    "endpoint",
                    "rejected",
                )
            }
        )
        self._llm.append({"run_id": self.run_id, **d})

    def add_memory(self, user_id: int, tick: int, kind: str, importance: float, text: str) -> None:
        """Queue a memory record."""
        self._memories.append({"run_id": self.run_id, "user_id": user_id, "tick": tick, "kind": kind, "importance": importance, "text": text})

    # ------------------------------------------------------------------ ticks
    def add_events(self, tick: int, events: EventBatch) -> None:
        """Buffer one tick's events (what :meth:`on_tick` does with a tick's batch), written with the next flush."""
        self._events.append((tick, LoggedTick.of(self.run_id, tick, events)))

    def on_tick(self, world: World, events: EventBatch, metrics: TickRecord) -> None:
        """TickObserver hook: buffer this tick, flush when due."""
        tick = int(metrics.tick)
        self.add_events(tick, events)
        llm = [r for r in self._llm if r["tick"] == tick]
        row = {
            "run_id": self.run_id,
            **metrics.as_dict(),
            # The LLM columns of the tick (recworld.kpis.LLM_TICK_KPIS), from the calls reported this tick.
            "llm_calls": sum(1 for r in llm if not r["cached"]),
            "llm_cached": sum(1 for r in llm if r["cached"]),
            "llm_tokens": sum(r["tokens_in"] + r["tokens_out"] for r in llm),
            "llm_fallbacks": sum(1 for r in llm if r["fell_back"]),
            "extra_json": "{}",
        }
        self._metrics.append(row)
        if self.snapshot_every and tick % self.snapshot_every == 0:
            u = world.users
            self._snapshots.extend(
                {
                    "run_id": self.run_id,
                    "tick": tick,
                    "user_id": i,
                    "satisfaction": float(u.satisfaction[i]),
                    "fatigue": float(u.fatigue[i]),
                    "churned": bool(u.churned[i]),
                    "sessions": int(u.sessions[i]),
                    "watches": int(u.watches[i]),
                }
                for i in range(world.n_users)
            )
        self._ticks_buffered += 1
        self.last_tick = tick
        if self._ticks_buffered >= self.flush_every:
            self._submit(world)

    def flush(self, world: World | None = None) -> None:
        """Write everything buffered in one transaction (with a checkpoint when configured), and wait until written.

        Raises:
            RecWorldError: the background writer failed (the error it met is named).
        """
        self._submit(world)
        self.wait()

    def wait(self) -> None:
        """Wait until every submitted tick is committed (background writer); raise the writer's error if it met one."""
        if self._queue is not None:
            self._queue.join()
        if self._proc is not None:
            self._collect(self._proc.wait())
        self._raise_if_failed()

    def close(self) -> None:
        """Write what is buffered and stop the background writer (never raises; :meth:`flush` reports errors)."""
        if self._proc is not None:
            try:
                self._submit(None)
                self.wait()
            except RecWorldError:
                pass
            self._proc.stop()
            self._proc = None
            return
        if self._queue is None:
            return
        try:
            self._submit(None)
        except RecWorldError:
            pass
        self._queue.put(None)
        self._thread.join()
        self._queue = None

    def _submit(self, world: World | None) -> None:
        # The checkpoint is the world's state now: taken here, in the world's thread, before the world moves on.
        if self._proc is not None:
            self._collect(self._proc.done())
        self._raise_if_failed()
        if not (self._events or self._metrics or self._llm or self._snapshots or self._memories or self._edges or self._removed or self._items):
            return
        blob, base = None, None
        if self.checkpointer is not None and world is not None and (self.last_tick + 1) % self.checkpoint_every == 0:
            blob = self.checkpointer(world)
            if isinstance(blob, tuple):
                blob, base = blob
                if base not in self._complete_ticks:
                    raise RecWorldError(f"an incremental checkpoint names tick {base}, where run {self.run_id} has no complete checkpoint of this recorder")
            else:
                self._complete_ticks.add(self.last_tick)
        job = _Job(self._events, self._metrics, self._snapshots, self._llm, self._memories, self._edges, self._removed, self._items, blob, base, self.last_tick)
        self._events, self._metrics, self._snapshots = [], [], []
        self._llm, self._memories, self._edges, self._removed, self._items = [], [], [], [], []
        self._ticks_buffered = 0
        if self._proc is not None:
            self._proc.put(job)  # bounded: a world faster than its database waits here
        elif self._queue is None:
            self._write(job)
        else:
            self._queue.put(job)  # bounded: a world faster than its database waits here

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RecWorldError(f"the event log writer failed: {_describe(self._error)}") from self._error

    def _collect(self, acks: list[_Ack]) -> None:
        for a in acks:
            self.events_written += a.events
            self.pages_written += a.pages
            if a.error is not None and self._error is None:
                self._error = _RemoteError(a.error)

    def _writer(self) -> None:
        assert self._queue is not None
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    self._write(job)
            except Exception as exc:  # noqa: BLE001 - any failure is reported to the world's thread by the next submit/flush/wait
                self._error = exc
            finally:
                self._queue.task_done()

    def _write(self, job: _Job) -> None:
        rows: list[tuple] = []
        user_ticks: list[tuple] = []
        item_ticks: list[tuple] = []
        summaries: list[tuple] = []
        for tick, lt in job.events:
            ev = lt.events
            stored = ev.stored_payloads()  # one JSON text per payload, for the rows and the summaries alike
            keep, ut, it = split_batch(self.run_id, tick, lt, stored)
            rows.extend(event_tuples(self.run_id, ev, keep, lt.seq, stored))
            user_ticks.extend(ut)
            item_ticks.extend(it)
            # Cascade and leave-reason counts from the payload text as stored (recworld.storage.summary).
            summaries.extend(summary_rows(self.run_id, batch_summary_input(tick, ev, stored)))
        with self.engine.begin() as con:
            insert_events(con, rows)
            insert_rows(con, "usertick", USER_TICK_COLUMNS, user_ticks)
            insert_rows(con, "itemtick", ITEM_TICK_COLUMNS, item_ticks)
            insert_rows(con, "ticksummary", SUMMARY_COLUMNS, summaries)
            _bulk(con, TickMetrics, job.metrics)
            _bulk(con, UserSnapshot, job.snapshots)
            _bulk(con, LLMCall, job.llm)
            _bulk(con, MemoryRecord, job.memories)
            if job.removed:
                live = (Edge.run_id == self.run_id, Edge.src == bindparam("s"), Edge.dst == bindparam("d"), Edge.removed_tick.is_(None))
                con.execute(update(Edge).where(*live).values(removed_tick=bindparam("t")), job.removed)
            _bulk(con, Edge, job.edges)
            _bulk(con, Item, job.items)
            if job.checkpoint is not None:
                values = {"run_id": self.run_id, "tick": job.last_tick, "base_tick": job.checkpoint_base, "state": job.checkpoint, "created_at": utcnow()}
                con.execute(insert(Checkpoint).values(**values))
                # Keep the two newest checkpoints and the complete ones they apply to: older ones are never needed to resume.
                kept = (Checkpoint.run_id == self.run_id, Checkpoint.tick >= job.last_tick - 1, Checkpoint.base_tick.is_not(None))
                bases = select(Checkpoint.base_tick).where(*kept)
                con.execute(delete(Checkpoint).where(Checkpoint.run_id == self.run_id, Checkpoint.tick < job.last_tick - 1, Checkpoint.tick.not_in(bases)))
            if job.last_tick >= 0:
                con.execute(update(Run).where(Run.id == self.run_id).values(tick_done=job.last_tick))
        self.events_written += len(rows)
        self.pages_written += sum(r[3] for r in user_ticks)

    def write_retention(self, world: World) -> None:
        """Replace the run's cohort retention table with the world's current one."""
        rows = [
            {"run_id": self.run_id, "cohort": c, "k": k, "cohort_size": n, "active": a, "share": a / n if n else 0.0} for c, k, n, a in world.retention_rows()
        ]
        with self.engine.begin() as con:
            con.execute(delete(RetentionPoint).where(RetentionPoint.run_id == self.run_id))
            _bulk(con, RetentionPoint, rows)


@dataclass
class _Job:
    """Buffered ticks handed to the writer: written in one transaction."""

    events: list[tuple[int, EventBatch]]
    metrics: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    llm: list[dict[str, Any]]
    memories: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    items: list[dict[str, Any]]
    checkpoint: bytes | None
    checkpoint_base: int | None  # the complete checkpoint's tick an incremental one applies to
    last_tick: int


@dataclass
class _Ack:
    """What the writer process reports for each job: the rows it wrote, or the error it met."""

    events: int = 0
    pages: int = 0
    error: str | None = None  # "ErrorClass: message" (exceptions of database drivers do not all pickle)


class _RemoteError(Exception):
    """An error the writer process met, as it described it."""


#: Below this many users a world's log is written by a thread under ``storage.writer: auto`` (see :func:`choose_writer`).
PROCESS_WRITER_USERS = 2_000

Writer = Literal["inline", "thread", "process"]


def choose_writer(setting: Literal["auto", "inline", "thread", "process"], n_users: int, cores: int | None = None) -> Writer:
    """The writer ``storage.writer`` asks for. ``auto``: a process for a world of :data:`PROCESS_WRITER_USERS`+ users
    when the run may use 2+ cores, the world's own thread (``inline``) when it has one core, else a thread.

    A process takes the rows' finishing and the database's work to another
    core (at 10,000 users about 1.8x the thread's logged speed, README); a
    small world's log is cheap, and a process would only add its start-up.
    With one core there is nothing for a thread to overlap with, and its
    inserts, waiting for the world's thread to let go of the GIL, held the
    database's write lock 2-3x as long as the same inserts made inline —
    time the other runs of a sweep writing to the same SQLite file waited.

    Args:
        cores: the cores this run may use (default: this process's CPU affinity); a sweep's Ray task has one.
    """
    if setting != "auto":
        return setting
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
    if cores < 2:
        return "inline"
    return "process" if n_users >= PROCESS_WRITER_USERS else "thread"


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _RemoteError) else f"{exc.__class__.__name__}: {exc}"


def _shareable(engine: Engine) -> bool:
    # A writer process opens the database by its URL: an in-memory SQLite database exists only in this process.
    url = engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: children fork from a clean, single-threaded server that has the storage modules imported
    # (fast to start; never a fork of this process, whose threads may hold locks).
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["recworld.storage.recorder"])
        return ctx
    return multiprocessing.get_context("spawn")


class _WriterProcess:
    """A child process that writes the recorder's jobs (:meth:`RunRecorder._write`) and acknowledges each."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        ctx = _context()
        self._jobs = ctx.Queue(maxsize=2)
        self._acks = ctx.Queue()
        self._pending = 0
        url = engine.url.render_as_string(hide_password=False)
        # The writer's parent is the fork server, not this process: it watches this one by pid.
        self._p = ctx.Process(target=_write_jobs, args=(url, run_id, self._jobs, self._acks, os.getpid()), name=f"recworld-log-{run_id}", daemon=True)
        # The writer needs only this module: hide the caller's __main__ so that neither the fork server nor the
        # child runs the user's script again (a script without an `if __name__ == "__main__"` guard would recurse).
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._p.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main

    def put(self, job: _Job) -> None:
        self._jobs.put(job)
        self._pending += 1

    def done(self) -> list[_Ack]:
        """The acknowledgements that arrived so far (never waits)."""
        out = []
        while self._pending:
            try:
                out.append(self._acks.get_nowait())
            except queue.Empty:
                break
            self._pending -= 1
        return out

    def wait(self) -> list[_Ack]:
        """Wait for every job put so far; a writer that died is reported as an error."""
        out = []
        while self._pending:
            try:
                out.append(self._acks.get(timeout=0.5))
                self._pending -= 1
            except queue.Empty:
                if not self._p.is_alive():
                    out.append(_Ack(error=f"the writer process exited with code {self._p.exitcode} before writing {self._pending} batch(es)"))
                    self._pending = 0
        return out

    def stop(self) -> None:
        if self._p.is_alive():
            self._jobs.put(None)
            self._p.join(timeout=30)
        if self._p.is_alive():
            self._p.kill()
            self._p.join()
        self._jobs.close()
        self._acks.close()


def _exit_when_gone(parent: int, every: float = 0.5) -> None:
    """End this process (nothing more written; an open transaction is rolled back) once ``parent`` is gone."""
    while _alive(parent):
        time.sleep(every)
    os._exit(0)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a killed process its parent has not reaped yet counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:  # no /proc (macOS): os.kill answered
        return True


def _write_jobs(url: str, run_id: int, jobs: Any, acks: Any, parent: int) -> None:
    """The writer process: write each job in its own transaction, acknowledge it; exit on ``None`` or when the parent is gone."""
    from recworld.storage.db import connect

    # A parent killed while it sent a job leaves half a message in the pipe, and this process holds the pipe's other
    # end too (a multiprocessing Queue), so the read would wait forever: a watchdog ends the process instead.
    threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True, name="recworld-writer-watchdog").start()
    rec = RunRecorder(connect(url), run_id)
    error: str | None = None
    while True:
        try:
            job = jobs.get(timeout=0.5)
        except queue.Empty:
            job = False
        # The world's process died (SIGKILL): a resume may already be rolling the run back, so write nothing more.
        if job is None or not _alive(parent):
            return
        if job is False:
            continue
        e0, p0 = rec.events_written, rec.pages_written
        if error is None:
            try:
                rec._write(job)
            except Exception as exc:  # noqa: BLE001 - reported to the world's process, which raises it at its next submit/flush
                error = _describe(exc)
        acks.put(_Ack(rec.events_written - e0, rec.pages_written - p0, error))


EVENT_COLUMNS = ("run_id", "tick", "user_id", "type", "item_id", "value", "text", "payload", "seq")


def event_tuples(
    run_id: int, ev: EventBatch, keep: np.ndarray | None = None, seq: np.ndarray | None = None, stored: dict[int, str] | None = None
) -> list[tuple]:
    """Rows of the event table as tuples (built column-wise: this is the hot path of logging).

    Args:
        run_id: the run.
        ev: one tick's events.
        keep: indices of the events to write (default all).
        seq: each event's place in the tick's stream (default: its index in ``ev``).
        stored: ``ev.stored_payloads()``, when the caller has it already.
    """
    idx = np.arange(len(ev)) if keep is None else np.asarray(keep, np.int64)
    if idx.size == 0:
        return []
    items, values, texts, payloads = ev.stored_columns(idx, stored)
    n = idx.size
    seqs = idx if seq is None else np.asarray(seq)[idx]
    return list(zip([run_id] * n, ev.tick[idx].tolist(), ev.user[idx].tolist(), ev.type[idx].tolist(), items, values, texts, payloads, seqs.tolist()))


def insert_events(con, rows: list[tuple], chunk: int = 50_000) -> None:
    """Bulk-insert event tuples (:func:`event_tuples`)."""
    insert_rows(con, "event", EVENT_COLUMNS, rows, chunk)


def _bulk(con, model, rows: list[dict[str, Any]], chunk: int = 20000) -> None:
    if not rows:
        return
    table = model.__table__
    for i in range(0, len(rows), chunk):
        con.execute(insert(table), rows[i : i + chunk])


__all__ = ["PROCESS_WRITER_USERS", "RunRecorder", "choose_writer", "create_run", "rollback", "set_status", "versions"]
