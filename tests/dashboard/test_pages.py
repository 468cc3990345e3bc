"""Server-rendered pages: readable without JavaScript, escaped, linked, paginated."""

from __future__ import annotations

import json
import re

import pytest


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="rw-data">(.*?)</script>', html, re.S)
    assert m, "page has no embedded chart data"
    return json.loads(m.group(1))


def test_home_redirects_to_runs(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/runs"


def test_runs_page_lists_filters_and_sorts(client, run_db):
    html = client.get("/runs").text
    assert f'href="/runs/{run_db.run_id}"' in html and "quickstart-random" in html
    assert "linucb" in html and "%" in html  # KPI columns rendered server-side
    only = client.get("/runs", params={"recommender": "random"}).text
    assert f'href="/runs/{run_db.other_run_id}"' in only and f'href="/runs/{run_db.run_id}"' not in only
    assert client.get("/runs", params={"sort": "watch_rate", "order": "asc"}).status_code == 200
    assert client.get("/runs", params={"sort": "nope"}).status_code == 422


def test_run_page_has_tiles_charts_and_data(client, run_db):
    html = client.get(f"/runs/{run_db.run_id}").text
    assert 'src="/static/vendor/plotly.min.js"' in html
    for chart in ("activity", "pages", "watch_rate", "rating", "churn", "exposure", "social", "llm", "retention", "cohorts"):
        assert f'id="chart-{chart}"' in html
    assert 'data-kpi="watch_rate"' in html and 'id="tick-done">30<' in html
    d = _data(html)
    assert len(d["ticks"]) == 30 and d["run"]["id"] == run_db.run_id
    assert "completed" in d["terminal"]
    assert 'id="live-note" class="live hidden"' in html  # finished: no live badge


def test_user_pages(client, run_db):
    html = client.get(f"/runs/{run_db.run_id}/users").text
    assert "1–25 of 80" in html and 'rel="next"' in html
    assert f'href="/runs/{run_db.run_id}/users/0"' in html and f'href="/runs/{run_db.run_id}/users/24"' in html
    # Sorted by user id, 25 a page: the fixture's user is on the page that holds its id.
    page = client.get(f"/runs/{run_db.run_id}/users", params={"offset": run_db.user_id // 25 * 25}).text
    assert f'href="/runs/{run_db.run_id}/users/{run_db.user_id}"' in page
    page2 = client.get(f"/runs/{run_db.run_id}/users", params={"offset": 25}).text
    assert "26–50 of 80" in page2 and 'rel="prev"' in page2

    u = client.get(f"/runs/{run_db.run_id}/users/{run_db.user_id}").text
    assert "I want fewer romances, more space sci-fi." in u
    assert "so good, &lt;3 &amp; all" in u and "<3 & all" not in u  # chat text (from the LLM) is escaped
    assert 'id="chart-state"' in u and _data(u)["snapshots"]
    n_instr = client.get(f"/api/runs/{run_db.run_id}/users/{run_db.user_id}").json()["event_counts"]["instruction"]
    only = client.get(f"/runs/{run_db.run_id}/users/{run_db.user_id}", params={"type": "instruction"}).text
    assert only.count('class="etype t15"') == min(n_instr, 25)
    assert client.get(f"/runs/{run_db.run_id}/users/100000").status_code == 404


def test_user_page_says_why_sessions_ended(client, run_db):
    from recworld.payloads import LEAVE_REASON_LABELS

    sessions = client.get(f"/api/runs/{run_db.run_id}/users/{run_db.user_id}/sessions", params={"limit": 25}).json()["items"]
    u = client.get(f"/runs/{run_db.run_id}/users/{run_db.user_id}").text
    table = u[u.index('id="sessions-table"') :]
    table = table[: table.index("</table>")]
    reasons = [s["leave_reason"] for s in sessions if s["leave_reason"]]
    assert reasons and all(LEAVE_REASON_LABELS[r] in table for r in reasons)


def test_item_pages(client, run_db):
    html = client.get(f"/runs/{run_db.run_id}/items").text
    assert f'href="/runs/{run_db.run_id}/items/' in html
    d = client.get(f"/api/runs/{run_db.run_id}/items/{run_db.item_id}").json()
    item = client.get(f"/runs/{run_db.run_id}/items/{run_db.item_id}").text
    c = d["cascades"]["cascades"][0]
    assert "Share cascades" in item and f"size {c['size']}, depth {c['depth']}" in item and c["depth"] >= 1
    it = d["item"]
    assert f"{it['impressions']} impressions ({it['watches']} watches + {it['skips']} skips)" in item
    assert 'id="chart-popularity"' in item
    assert client.get(f"/runs/{run_db.run_id}/items", params={"q": "Toy Story"}).text.count("Toy Story") >= 1


def test_run_page_shows_leave_reasons_and_cascades(client, run_db):
    from recworld.payloads import LEAVE_REASON_LABELS

    ov = client.get(f"/api/runs/{run_db.run_id}/overview").json()
    html = client.get(f"/runs/{run_db.run_id}").text
    table = html[html.index('id="leave-reasons"') :]
    assert all(LEAVE_REASON_LABELS[r] in table[: table.index("</table>")] for r in ov["leave_reasons"])
    summary = html[html.index('id="cascade-summary"') :]
    assert f'<th>deepest reshare chain</th><td class="num">{run_db.cascade_stats["max_depth"]}</td>' in summary


def test_graph_page_and_empty_state(client, run_db):
    html = client.get(f"/runs/{run_db.run_id}/graph").text
    g = client.get(f"/api/runs/{run_db.run_id}/graph").json()
    assert 'id="chart-graph"' in html and len(_data(html)["graph"]["nodes"]) == len(g["nodes"]) > 10
    assert client.get(f"/runs/{run_db.run_id}/graph", params={"color": "activity"}).status_code == 200
    empty = client.get(f"/runs/{run_db.other_run_id}/graph").text
    assert 'id="graph-empty"' in empty and "chart-graph" not in empty


def test_compare_page(client, run_db):
    html = client.get("/compare", params={"runs": f"{run_db.run_id},{run_db.other_run_id}"}).text
    assert 'id="delta-table"' in html and "watch_rate" in html
    d = _data(html)
    assert [r["id"] for r in d["runs"]] == [run_db.run_id, run_db.other_run_id]
    assert "Pick runs" in client.get("/compare").text


@pytest.mark.parametrize("url", ["/runs/999", "/runs/999/users", "/runs/1/items/999999", "/compare?runs=1,999"])
def test_html_errors_are_pages(client, url):
    r = client.get(url)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Back to the runs" in r.text


def test_html_bad_params_are_422_pages(client):
    r = client.get("/runs/1/users", params={"offset": -5})
    assert r.status_code == 422 and "offset" in r.text and r.headers["content-type"].startswith("text/html")


def test_validation_pages_show_the_stored_report(client, validation):
    from urllib.parse import quote

    rep = validation.report
    listing = client.get("/validations").text
    assert f'href="/validations/{quote(validation.name)}"' in listing
    one = rep["taste_alignment"]["1:1"]["most_likely"]
    assert f"{one['accuracy']:.3f}" in listing
    page = client.get(f"/validations/{quote(validation.name)}").text
    # Every section of the report, with the values the CLI wrote.
    for section in ("validation-targets", "validation-alignment", "validation-auc", "validation-ratings", "validation-agreement", "validation-fit"):
        assert f'id="{section}"' in page, section
    for ratio in ("1:1", "1:3", "1:9"):
        assert f"{rep['taste_alignment'][ratio]['sampled']['f1']:.3f}" in page
    assert f"{rep['auc']['mf']:.3f}" in page and f"{rep['ratings']['rmse']:.3f}" in page
    for row in rep["agreement"]["rows"]:
        assert f'<td>{row["recommender"]}</td><td class="num">{row["recall@10"]:.3f}</td>' in page
    # The conversation protocol's three intent modes, as the CLI printed them.
    cv = rep["conversations"]["modes"]
    assert 'id="validation-conversations"' in page and set(cv) == {"target", "target_free", "held_out"}
    for mode, label in (("target", "target from the model&#39;s taste"), ("target_free", "target-free"), ("held_out", "held-out real item")):
        r = cv[mode]
        assert r["conversations"] > 0
        assert f"<td>{label}" in page and f"[{r['success_ci'][0]:.3f}, {r['success_ci'][1]:.3f}]" in page, mode
    missing = client.get("/validations/nope")
    assert missing.status_code == 404 and "no validation named" in missing.text


def test_evaluation_pages(client, eval_name):
    from urllib.parse import quote

    html = client.get("/evals").text
    assert f'href="/evals/{quote(eval_name)}"' in html
    page = client.get(f"/evals/{quote(eval_name)}").text
    d = _data(page)
    assert d["policies"] == ["random", "popularity"] and len(d["rows"]) == 10
    # The table is rendered server-side: every policy with a mean and its interval per metric.
    assert re.search(r"<td>popularity</td>\s*<td class=\"num\">[0-9.]+ <span class=\"ci\">\[[-0-9.]+, [-0-9.]+\]</span>", page)
    assert 'id="chart-eval-0"' in page
    missing = client.get("/evals/nope")
    assert missing.status_code == 404 and "no evaluation named" in missing.text


def test_compare_page_shows_a_sweep_with_intervals(sweep_client, sweep_db):
    from urllib.parse import quote

    listing = sweep_client.get("/compare").text
    assert 'id="sweeps-table"' in listing and f'href="/compare?sweep={quote(sweep_db.name)}"' in listing
    page = sweep_client.get("/compare", params={"sweep": sweep_db.name}).text
    d = _data(page)
    assert d["name"] == sweep_db.name and d["recommenders"] == ["random", "popularity"]
    # Server-rendered: a row per KPI, each recommender's mean with its interval and n.
    assert re.search(r"<td>watch_rate</td>\s*<td class=\"num\">[0-9.]+ <span class=\"ci\">\[[-0-9.]+, [-0-9.]+\]</span> <small>n=2</small>", page)
    assert 'id="chart-sweep-0"' in page and page.count('<a href="/runs/') == 4
    missing = sweep_client.get("/compare", params={"sweep": "nope"})
    assert missing.status_code == 404 and "no sweep named" in missing.text


def test_run_page_shows_model_text_kept_and_rejected_by_reason(language_client, language_run):
    client = language_client
    html = client.get(f"/runs/{language_run.run_id}").text
    table = html.split('id="llm-quality"', 1)[1].split("</table>", 1)[0]
    for reason in ("invented title", "contradicts persona", "echo", "off topic", "empty"):
        assert reason in table
    body = client.get(f"/api/runs/{language_run.run_id}/overview").json()
    rows = body["llm_by_purpose"]
    kept = sum(r["kept"] for r in rows)
    reasons: dict = {}
    for r in rows:
        assert r["kept"] + r["rejected"] + r["failed"] == r["calls"]
        for k, n in r["reasons"].items():
            reasons[k] = reasons.get(k, 0) + n
    # The panel counts exactly what the scripted model got wrong (the interview came after the run: not counted here).
    c = dict(language_run.counts)
    assert kept == c.pop("good") and reasons == c


def test_user_page_shows_stored_interviews(language_client, language_run):
    client = language_client
    html = client.get(f"/runs/{language_run.run_id}/users/{language_run.user_id}").text
    section = html.split('id="interviews"', 1)[1].split("<h2>", 1)[0]
    assert "What would you change about the app?" in section and "<b>A:</b>" in section
    api = client.get(f"/api/runs/{language_run.run_id}/users/{language_run.user_id}").json()
    [iv] = api["interviews"]
    assert iv["question"] == "What would you change about the app?" and iv["answer"] in section
    other = client.get(f"/runs/{language_run.run_id}/users/{language_run.user_id + 1}").text
    assert "No interviews yet." in other


def test_conversations_page_shows_transcripts_filters_and_links(conversation_client, conversation_run):
    rid = conversation_run.run_id
    api = conversation_client.get(f"/api/runs/{rid}/conversations", params={"outcome": "success", "limit": 500}).json()
    html = conversation_client.get(f"/runs/{rid}/conversations", params={"outcome": "success"}).text
    assert f'href="/runs/{rid}/conversations"' in html  # the run's navigation links the page
    shown = re.findall(r'<article class="conversation" id="conversation-(\d+)" data-outcome="(\w+)"', html)
    assert [int(c) for c, _ in shown] == [c["conversation"] for c in api["items"][:25]] and {o for _, o in shown} == {"success"}
    first = api["items"][0]
    for item in first["accepted"]:
        assert f'href="/runs/{rid}/items/{item["item_id"]}"' in html
    assert f'href="/runs/{rid}/users/{first["user_id"]}"' in html
    assert f"{api['total']} of {api['total']}" in html or f"of {api['total']}" in html  # the pager counts the filter
    # The user page has the user's conversations.
    user_html = conversation_client.get(f"/runs/{rid}/users/{first['user_id']}").text
    assert 'id="conversations"' in user_html and f'id="conversation-{first["conversation"]}"' in user_html


def test_conversations_page_of_a_run_without_the_layer_says_so(client, run_db):
    html = client.get(f"/runs/{run_db.run_id}/conversations").text
    assert "No conversations in this run" in html
    assert 'id="conversations"' not in client.get(f"/runs/{run_db.run_id}/users/{run_db.user_id}").text
