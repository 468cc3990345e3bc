"""End to end in a real headless browser: a run in progress, its live dashboard, a user page.

Uses Debian's chromium (``apt-get install chromium``) driven by the PyPI
``playwright`` package; skipped when chromium is not installed.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); the browser test needs it"),
]


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_live_run_in_browser(tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from recworld.dashboard.queries import status_and_tick
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.scenarios.serve import start_dashboard
    from recworld.storage import connect

    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = connect(url)  # the schema exists before the dashboard opens it
    scenario = load_scenario("quickstart").with_overrides(**{"population.n_users": 80, "ticks": 80})
    hurry = threading.Event()
    errors: list[BaseException] = []

    def slow_tick(world) -> None:
        if not hurry.is_set():
            # Slow enough that the run is still going while a browser starts on a busy machine
            # (the run itself is fast since the page log; `hurry` lets it finish once checked).
            time.sleep(0.5)

    def run() -> None:
        try:
            run_scenario(scenario, db_url=url, progress=False, on_tick=slow_tick)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    runner = threading.Thread(target=run, name="test-run", daemon=True)
    runner.start()
    server = start_dashboard(url, host="127.0.0.1", port=0)
    try:
        _wait(lambda: (st := status_and_tick(engine, 1)) is not None and st[0] == "running" and st[1] >= 2, 60, "the run to start")
        base = f"http://127.0.0.1:{server.port}"
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{base}/runs/1")
                # charts render: plotly draws svg inside each chart div
                page.wait_for_selector("#chart-activity .main-svg", timeout=20_000)
                page.wait_for_selector("#chart-retention .main-svg", timeout=20_000)
                assert page.locator(".js-plotly-plot").count() >= 10
                # a chart with nothing to show says so (this run's utility brain makes no LLM calls)
                assert "no LLM calls" in page.evaluate("document.getElementById('chart-llm').layout.annotations[0].text")
                assert not page.evaluate("(document.getElementById('chart-activity').layout.annotations || []).length")
                assert page.locator("#run-status").inner_text() == "running"
                first = int(page.locator("#tick-done").inner_text())
                points_before = page.evaluate("document.getElementById('chart-activity').data[0].x.length")
                page.screenshot(path=str(tmp_path / "run_live_1.png"), full_page=True)
                # a live update arrives over SSE: the tick counter and the chart grow without reload
                page.wait_for_function(f"parseInt(document.getElementById('tick-done').textContent) > {first + 2}", timeout=30_000)
                points_after = page.evaluate("document.getElementById('chart-activity').data[0].x.length")
                assert points_after > points_before
                assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload happened
                page.screenshot(path=str(tmp_path / "run_live_2.png"), full_page=True)

                # the runs list shows it; then a user page
                page.goto(f"{base}/runs")
                assert page.locator("#runs-table tbody tr").count() == 1
                page.goto(f"{base}/runs/1/users")
                page.locator("#users-table tbody tr a").first.click()
                page.wait_for_url("**/runs/1/users/*")
                page.wait_for_selector("#chart-state .main-svg", timeout=20_000)
                assert page.locator("#persona").inner_text().strip()
                page.screenshot(path=str(tmp_path / "user.png"), full_page=True)

                # an evaluation stored by `recworld eval` shows its intervals as error bars
                from recworld.envs.evaluate import store_results

                store_results(url, "browser-eval", [
                    {"policy": p_, "metric": "retention", "mean": m, "ci_low": m - 0.02, "ci_high": m + 0.02, "n_seeds": 2, "values": [m - 0.01, m + 0.01]}
                    for p_, m in (("random", 0.89), ("slate_pg", 0.93))
                ])  # fmt: skip
                page.goto(f"{base}/evals")
                page.locator("#evals-table tbody tr a").first.click()
                page.wait_for_url("**/evals/browser-eval")
                page.wait_for_selector("#chart-eval-0 .main-svg", timeout=20_000)
                assert page.evaluate("document.getElementById('chart-eval-0').data[0].error_y.array.length") == 2
                page.screenshot(path=str(tmp_path / "eval.png"), full_page=True)

                # back to the run: once it completes the stream ends and the badge says so
                hurry.set()
                page.goto(f"{base}/runs/1")
                page.wait_for_function("document.getElementById('run-status').textContent === 'completed'", timeout=60_000)
                assert int(page.locator("#tick-done").inner_text()) == 80
                page.screenshot(path=str(tmp_path / "run_done.png"), full_page=True)

                # a long run's charts get buckets of ticks (here forced: 80 ticks in at most 10 points), counts drawn per tick
                page.goto(f"{base}/runs/1?points=10")
                page.wait_for_selector("#chart-activity .main-svg", timeout=20_000)
                assert page.locator("#bucket-note").is_visible()
                active = page.evaluate("document.getElementById('chart-activity').data.find((t) => t.name === 'active users')")
                every = page.evaluate("fetch('/api/runs/1/ticks').then((r) => r.json())")
                assert active["x"] == [t["tick"] for t in every][7::8]  # buckets of 8 ticks, each at its last tick
                assert active["y"] == pytest.approx([sum(t["active_users"] for t in every[i : i + 8]) / 8 for i in range(0, 80, 8)])
                assert "8-tick buckets" in page.evaluate("document.getElementById('chart-activity').layout.title.text")
            finally:
                browser.close()
    finally:
        hurry.set()
        runner.join(timeout=120)
        server.stop()
    assert not errors, errors
    assert not runner.is_alive()
    for name in ("run_live_1.png", "run_live_2.png", "user.png", "eval.png", "run_done.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_sweep_comparison_in_browser(sweep_db, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from recworld.scenarios.serve import start_dashboard

    server = start_dashboard(sweep_db.url, host="127.0.0.1", port=0)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"http://127.0.0.1:{server.port}/compare")
                page.locator("#sweeps-table tbody tr a").first.click()
                page.wait_for_url("**/compare?sweep=*")
                page.wait_for_selector("#chart-sweep-0 .main-svg", timeout=20_000)
                # one bar per recommender with its 95% interval as an error bar, and the per-seed dots
                assert page.evaluate("document.getElementById('chart-sweep-0').data[0].x") == ["random", "popularity"]
                assert page.evaluate("document.getElementById('chart-sweep-0').data[0].error_y.array.length") == 2
                assert page.evaluate("document.getElementById('chart-sweep-0').data[1].y.length") == 4
                page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.stop()
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
