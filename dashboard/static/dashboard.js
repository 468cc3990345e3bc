/* RecWorld dashboard: charts (plotly.js, served locally) and live updates (server-sent events). */
const RW = (() => {
  "use strict";
  const CFG = { displaylogo: false, responsive: true };
  const PALETTE = ["#3759d7", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#2e86de", "#c0392b", "#27ae60"];

  function layout(title, extra) {
    return Object.assign({
      title: { text: title, font: { size: 14 } },
      margin: { l: 52, r: 16, t: 40, b: 40 },
      height: 280,
      legend: { orientation: "h", y: -0.16 },
      xaxis: { hoverformat: "d" },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    }, extra || {});
  }

  function fmt(v, kind) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (kind === "pct") return (100 * v).toFixed(1) + "%";
    if (kind === "int") return Math.round(v).toLocaleString("en-US");
    if (kind === "f2") return Number(v).toFixed(2);
    return Number(v).toFixed(3);
  }

  const col = (rows, f) => rows.map((r) => (r[f] === undefined ? null : r[f]));
  // A row may stand for a bucket of n_ticks ticks (a long run): a count it sums is drawn as its mean per tick.
  const perTick = (c, rows, f) => ((c.sums || []).includes(f) ? rows.map((r) => (r[f] === undefined || r[f] === null ? null : r[f] / (r.n_ticks || 1))) : col(rows, f));
  const tickTitle = (title, step) => title + (step > 1 ? " · per tick (means over " + step + "-tick buckets)" : " · per tick");

  function trace(x, y, name, kind, color) {
    const t = { x: x, y: y, name: name, type: kind === "bar" ? "bar" : "scatter" };
    if (kind !== "bar") t.mode = "lines";
    if (color) t.marker = { color: color }, t.line = { color: color };
    return t;
  }

  // A chart whose series are all zero or missing says so instead of drawing flat lines.
  const hasData = (c, rows) => rows.some((t) => c.series.some(([f]) => t[f]));
  function emptyNote(c, rows) {
    if (hasData(c, rows)) return [];
    const text = rows.length ? (c.empty || "nothing recorded in this run") : "no ticks yet";
    return [{ text: text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: { color: "#667", size: 13 } }];
  }

  function drawTickCharts(charts, ticks, step) {
    const xs = ticks.map((t) => t.tick);
    for (const c of charts) {
      const traces = c.series.map(([f, label, kind, axis], i) => Object.assign(trace(xs, perTick(c, ticks, f), label, kind, PALETTE[i]), axis ? { yaxis: axis } : {}));
      const extra = c.pct ? { yaxis: { tickformat: ".0%" } } : {};
      extra.annotations = emptyNote(c, ticks);
      if (c.series.some((s) => s[3] === "y2")) { extra.yaxis2 = { overlaying: "y", side: "right", showgrid: false }; extra.margin = { l: 52, r: 44, t: 40, b: 40 }; }
      Plotly.newPlot("chart-" + c.id, traces, layout(tickTitle(c.title, step), extra), CFG);
    }
  }

  function drawRetention(ret) {
    const ks = Object.keys(ret.curve).map(Number).sort((a, b) => a - b);
    Plotly.react("chart-retention",
      [trace(ks, ks.map((k) => ret.curve[k]), "share of cohort active", "line", PALETTE[0])],
      layout("Retention curve (" + ret.source + ")", { xaxis: { title: { text: "periods (" + ret.period_ticks + " ticks) after first session" }, dtick: 1 }, yaxis: { tickformat: ".0%", range: [0, 1.05] } }), CFG);
    const el = document.getElementById("chart-cohorts");
    if (!el) return;
    const cohorts = [...new Set(ret.cohorts.map((c) => c.cohort))].sort((a, b) => a - b);
    const z = cohorts.map(() => ks.map(() => null));
    const text = cohorts.map(() => ks.map(() => ""));
    for (const c of ret.cohorts) {
      const i = cohorts.indexOf(c.cohort), j = ks.indexOf(c.k);
      if (i >= 0 && j >= 0) { z[i][j] = c.share; text[i][j] = c.active + " / " + c.cohort_size; }
    }
    Plotly.react(el, [{ type: "heatmap", x: ks, y: cohorts, z: z, text: text, colorscale: "Blues", reversescale: true, zmin: 0, zmax: 1,
      hovertemplate: "cohort %{y}, k=%{x}: %{z:.1%} (%{text})<extra></extra>" }],
      layout(ret.cohorts_truncated ? "Cohort retention (first 60 cohorts and periods)" : "Cohort retention", { xaxis: { title: { text: "k" }, dtick: 1 }, yaxis: { title: { text: "cohort (first period)" }, autorange: "reversed", dtick: 1 } }), CFG);
  }

  function retentionTable(ret) {
    const t = document.getElementById("retention-table");
    if (!t) return;
    const ks = Object.keys(ret.curve).map(Number).sort((a, b) => a - b);
    t.tHead.rows[0].innerHTML = "<th>k (periods after first session)</th>" + ks.map((k) => '<th class="num">' + k + "</th>").join("");
    t.tBodies[0].rows[0].innerHTML = "<td>share active</td>" + ks.map((k) => '<td class="num">' + fmt(ret.curve[k], "pct") + "</td>").join("");
    const src = document.getElementById("retention-source");
    if (src) src.textContent = ret.source;
  }

  function updateRun(run) {
    document.querySelectorAll("[data-kpi]").forEach((el) => {
      const txt = fmt(run.kpis[el.dataset.kpi], el.dataset.fmt);
      if (el.textContent !== txt) { el.textContent = txt; el.classList.add("flash"); setTimeout(() => el.classList.remove("flash"), 700); }
    });
    const td = document.getElementById("tick-done");
    if (td) td.textContent = String(run.tick_done + 1);
    setStatus(run.status);
  }

  function setStatus(status) {
    const b = document.getElementById("run-status");
    if (b) { b.textContent = status; b.className = "badge status-" + status; }
  }

  function runPage(D) {
    drawTickCharts(D.charts, D.ticks, D.tick_step || 1);
    drawRetention(D.retention);
    if (D.terminal.includes(D.run.status) || !window.EventSource) return;
    let last = D.ticks.length ? D.ticks[D.ticks.length - 1].tick : -1;
    let lastRetention = 0;
    const refreshRetention = () =>
      fetch("/api/runs/" + D.run.id + "/retention", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null)).then((r) => { if (r) { drawRetention(r); retentionTable(r); } });
    const es = new EventSource("/api/runs/" + D.run.id + "/stream?after=" + last);
    es.addEventListener("ticks", (ev) => {
      const m = JSON.parse(ev.data);
      const rows = m.ticks.filter((t) => t.tick > last);
      if (rows.length) {
        last = rows[rows.length - 1].tick;
        const xs = rows.map((r) => r.tick);
        for (const c of D.charts) {
          const id = "chart-" + c.id;
          Plotly.extendTraces(id, { x: c.series.map(() => xs), y: c.series.map(([f]) => perTick(c, rows, f)) }, c.series.map((_, i) => i));
          const el = document.getElementById(id);
          if (el.layout.annotations && el.layout.annotations.length && hasData(c, rows)) Plotly.relayout(id, { annotations: [] });
        }
      }
      updateRun(m.run);
      if (Date.now() - lastRetention > 5000) { lastRetention = Date.now(); refreshRetention(); }
    });
    es.addEventListener("end", (ev) => {
      es.close();
      const m = JSON.parse(ev.data);
      setStatus(m.status);
      const note = document.getElementById("live-note");
      if (note) note.classList.add("hidden");
      refreshRetention();
    });
  }

  function comparePage(D) {
    const label = (r) => "run " + r.id + " · " + r.name + " (" + r.recommender + ")";
    for (const c of D.charts) {
      const [f, name] = c.series[0];
      const traces = D.runs.map((r, i) => { const t = D.ticks[r.id] || []; return trace(t.map((x) => x.tick), perTick(c, t, f), label(r), "line", PALETTE[i % PALETTE.length]); });
      Plotly.newPlot("chart-" + c.id, traces, layout(c.title + ": " + name, c.pct ? { yaxis: { tickformat: ".0%" } } : {}), CFG);
    }
    const traces = D.runs.map((r, i) => {
      const cur = D.retention[r.id] || {};
      const ks = Object.keys(cur).map(Number).sort((a, b) => a - b);
      return trace(ks, ks.map((k) => cur[k]), label(r), "line", PALETTE[i % PALETTE.length]);
    });
    Plotly.newPlot("chart-retention", traces, layout("Retention curve", { xaxis: { title: { text: "periods after first session" }, dtick: 1 }, yaxis: { tickformat: ".0%", range: [0, 1.05] } }), CFG);
  }

  function userPage(D) {
    const s = D.snapshots, xs = s.map((r) => r.tick);
    Plotly.newPlot("chart-state", [
      trace(xs, col(s, "satisfaction"), "satisfaction", "line", PALETTE[0]),
      trace(xs, col(s, "fatigue"), "fatigue", "line", PALETTE[1]),
      Object.assign(trace(xs, col(s, "watches"), "watches (cumulative)", "line", PALETTE[2]), { yaxis: "y2" }),
    ], layout("State over time", { yaxis: { range: [0, 1.05], title: { text: "0-1" } }, yaxis2: { overlaying: "y", side: "right", title: { text: "watches" }, rangemode: "tozero" } }), CFG);
  }

  function itemPage(D) {
    const t = D.timeseries, xs = t.map((r) => r.tick);
    const traces = [trace(xs, col(t, "watches"), "watches", "bar", PALETTE[0]), trace(xs, col(t, "social_watches"), "from social feed", "bar", PALETTE[2]),
      trace(xs, col(t, "posts"), "posts", "bar", PALETTE[1]), trace(xs, col(t, "ratings"), "ratings", "line", PALETTE[3])];
    if (t.some((r) => r.impressions > 0)) traces.push(trace(xs, col(t, "impressions"), "impressions", "line", PALETTE[4]));
    const per = D.step > 1 ? " (per " + D.step + " ticks)" : " (per tick)";
    Plotly.newPlot("chart-popularity", traces, layout("Popularity over time" + per, { barmode: "stack", height: 320 }), CFG);
  }

  function graphPage(D) {
    const g = D.graph, pos = {};
    g.nodes.forEach((n) => { pos[n.user_id] = n; });
    const ex = [], ey = [];
    for (const [s, d] of g.edges) { const a = pos[s], b = pos[d]; if (a && b) { ex.push(a.x, b.x, null); ey.push(a.y, b.y, null); } }
    const traces = [{ x: ex, y: ey, mode: "lines", type: "scatter", line: { width: 0.5, color: "#b8bfd0" }, hoverinfo: "skip", showlegend: false }];
    const node = (ns, name, extra) => Object.assign({
      x: ns.map((n) => n.x), y: ns.map((n) => n.y), customdata: ns.map((n) => n.user_id), mode: "markers", type: "scatter", name: name,
      text: ns.map((n) => "user " + n.user_id + "<br>role " + (n.role || "?") + "<br>activity " + fmt(n.activity, "f2") + "<br>degree " + n.degree),
      hoverinfo: "text", marker: { size: ns.map((n) => 5 + Math.min(15, Math.sqrt(n.degree) * 2)), line: { width: 0.5, color: "#fff" } },
    }, extra || {});
    if (D.color === "role") {
      const roles = [...new Set(g.nodes.map((n) => n.role || "?"))].sort();
      roles.forEach((r, i) => { const t = node(g.nodes.filter((n) => (n.role || "?") === r), r); t.marker.color = PALETTE[i % PALETTE.length]; traces.push(t); });
    } else {
      const t = node(g.nodes, D.color);
      Object.assign(t.marker, { color: g.nodes.map((n) => n[D.color]), colorscale: "Viridis", showscale: true, colorbar: { title: { text: D.color } } });
      traces.push(t);
    }
    const ax = { visible: false };
    Plotly.newPlot("chart-graph", traces, { height: 640, margin: { l: 10, r: 10, t: 10, b: 10 }, xaxis: ax, yaxis: ax, hovermode: "closest", legend: { orientation: "h" } }, CFG)
      .then((el) => el.on("plotly_click", (ev) => { const p = ev.points && ev.points[0]; if (p && p.customdata !== undefined) window.location = "/runs/" + D.run_id + "/users/" + p.customdata; }));
  }

  function evalPage(D) {
    ciCharts(D.rows, D.metrics, "policy", "chart-eval-");
  }

  function sweepPage(D) {
    ciCharts(D.rows.filter((r) => r.mean !== null), D.metrics, "recommender", "chart-sweep-");
  }

  function ciCharts(allRows, metrics, key, prefix) {
    // One chart per metric: each group's mean with its 95% CI, and the per-seed values as dots.
    metrics.forEach((m, i) => {
      const rows = allRows.filter((r) => r.metric === m);
      const x = rows.map((r) => r[key]);
      const traces = [{
        x: x, y: col(rows, "mean"), type: "bar", name: "mean (95% CI)",
        marker: { color: rows.map((_, j) => PALETTE[j % PALETTE.length]) },
        error_y: { type: "data", symmetric: false, array: rows.map((r) => r.ci_high - r.mean), arrayminus: rows.map((r) => r.mean - r.ci_low) },
      }, {
        x: rows.flatMap((r) => r.values.map(() => r[key])), y: rows.flatMap((r) => r.values),
        type: "scatter", mode: "markers", name: "per seed", marker: { color: "#333", size: 5, opacity: 0.5 },
      }];
      Plotly.newPlot(prefix + i, traces, layout(m, { xaxis: { type: "category" } }), CFG);
    });
  }

  function compareForm() {
    const form = document.getElementById("compare-form");
    if (!form) return;
    form.addEventListener("submit", (ev) => {
      const ids = [...document.querySelectorAll("input.cmp:checked")].map((c) => c.value);
      if (!ids.length) { ev.preventDefault(); alert("Tick the runs to compare (the first is the baseline)."); return; }
      document.getElementById("compare-runs").value = ids.join(",");
      form.querySelectorAll("input.cmp").forEach((c) => { c.disabled = true; });
    });
  }

  return { runPage, comparePage, userPage, itemPage, graphPage, evalPage, sweepPage, compareForm, fmt };
})();
