// The wts-playbook HTML report: everything is drawn from the JSON in #report-data.
// No network, no libraries; text goes in with textContent only.
"use strict";
(function () {
  var t0 = performance.now();
  var pageErrors = [];
  window.addEventListener("error", function (e) {
    pageErrors.push(String(e.message || e));
    document.body.setAttribute("data-errors", pageErrors.join(" | "));
  });

  var D = JSON.parse(document.getElementById("report-data").textContent);
  var M = D.meta;
  var PAGE = 100;
  var SVGNS = "http://www.w3.org/2000/svg";
  // Row columns (see html.rs).
  var STEP = 0, KEY = 1, STATUS = 2, ATTEMPTS = 3, DUR = 4, START = 5, HTTP = 6, CLASS = 7,
    LINE = 8, NOTE = 9, INDEX = 10;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { e.textContent = attrs[k]; }
        else if (k === "cls") { e.className = attrs[k]; }
        else { e.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      }
    });
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function stClass(s) {
    return ["succeeded", "failed", "unknown", "skipped", "planned"].indexOf(s) >= 0 ? "st-" + s : "st-other";
  }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) { return ""; }
    if (ms < 1000) { return ms + "ms"; }
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + "s";
  }

  var app = document.getElementById("app");

  // ---- the outcome first --------------------------------------------------------------
  app.appendChild(el("h1", null, [
    el("span", { text: M.playbook.name }),
    el("span", { cls: "badge " + M.outcome, id: "outcome", text: M.outcome }),
    el("span", { cls: "note", text: M.mode + (M.dry_run ? " (nothing was sent)" : "") })
  ]));
  if (M.abort_reason) {
    app.appendChild(el("div", { cls: "warn", id: "abort-reason" }, [el("b", { text: "Aborted: " }), M.abort_reason]));
  }
  if (M.truncated) {
    app.appendChild(el("div", { cls: "warn", text: "The report has no footer: the run was cut short (or is still running). Totals count the items recorded." }));
  }
  if (M.in_flight > 0) {
    app.appendChild(el("div", { cls: "warn", text: M.in_flight + " request(s) started without a recorded result: their outcome is unknown." }));
  }
  var totals = el("div", { cls: "totals", id: "totals" });
  D.statuses.forEach(function (s) {
    totals.appendChild(el("div", { cls: "total", "data-status": s, "data-count": String(D.counts[s]) }, [
      el("span", { cls: "n " + stClass(s), text: fmt(D.counts[s]) }), el("span", { cls: "s", text: s })
    ]));
  });
  var allCount = D.rows.length;
  totals.appendChild(el("div", { cls: "total", "data-status": "total", "data-count": String(allCount) }, [
    el("span", { cls: "n", text: fmt(allCount) }), el("span", { cls: "s", text: "items" })
  ]));
  app.appendChild(totals);

  var facts = el("dl", { cls: "facts" });
  function fact(k, v) { if (v !== null && v !== undefined && v !== "") { facts.appendChild(el("dt", { text: k })); facts.appendChild(el("dd", { text: String(v) })); } }
  var S = M.settings || {};
  fact("duration", M.duration + (M.finished_at ? "  (" + M.started_at + " → " + M.finished_at + ")" : "  (started " + M.started_at + ")"));
  if (M.base_url) { fact("base URL", M.base_url + (S.sandbox ? "  (sandbox)" : "")); }
  fact("routes", M.routes);
  fact("playbook", M.playbook.path + "  sha256 " + M.playbook.sha256);
  fact("rate limit", S.rate_limit);
  fact("concurrency", S.concurrency);
  if (M.rate_limited !== null && M.rate_limited !== undefined) { fact("429 answers", fmt(M.rate_limited)); }
  fact("limit", S.limit);
  fact("resumed from", S.resume);
  fact("run id", M.run_id);
  fact("tool", M.tool);
  fact("report", M.report);
  app.appendChild(facts);

  // ---- timeline ---------------------------------------------------------------------------
  var T = D.timeline;
  app.appendChild(el("h2", { text: "Timeline: requests per second" }));
  if (M.dry_run) {
    app.appendChild(el("p", { cls: "note", id: "timeline", text: "A dry run sends nothing: there is no timeline." }));
  } else (function () {
    var n = T.requests.length, secs = T.bucket_ms / 1000;
    var W = 1000, H = 220, L = 48, R = 10, TOP = 14, BOT = 46, ph = H - TOP - BOT, pw = W - L - R;
    var rates = T.requests.map(function (c) { return c / secs; });
    var maxRate = Math.max.apply(null, rates.concat([0]));
    var wins = T.windows.slice().sort(function (a, b) { return a.per_second - b.per_second; });
    var yMax = Math.max(maxRate, wins.length ? wins[0].per_second : 0, 1) * 1.15;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "requests per second over time", id: "timeline" });
    var bw = pw / Math.max(n, 1);
    T.pauses.forEach(function (p) {
      var x = L + (p[0] / T.bucket_ms) * bw, w = Math.max((p[1] / T.bucket_ms) * bw, 1);
      var r = svg("rect", { x: x, y: TOP, width: Math.min(w, W - R - x), height: ph, fill: "#8c959f", "fill-opacity": "0.18" });
      r.appendChild(svg("title", {}, "paused " + fmtMs(p[1]) + " after a 429"));
      box.appendChild(r);
    });
    rates.forEach(function (r, i) {
      if (r <= 0) { return; }
      var h = (r / yMax) * ph;
      var b = svg("rect", { x: L + i * bw, y: TOP + ph - h, width: Math.max(bw - (bw > 3 ? 1 : 0), 0.5), height: h, fill: "#0969da" });
      b.appendChild(svg("title", {}, "t+" + (i * secs) + "s: " + r.toFixed(1) + " requests/s"));
      box.appendChild(b);
    });
    var offChart = 0;
    wins.forEach(function (w) {
      var label = w.label + " = " + w.per_second.toFixed(2) + "/s";
      if (w.per_second > yMax) {
        // Above the chart: listed at the top left, one under the other.
        offChart += 1;
        box.appendChild(svg("text", { x: L + 6, y: TOP + 2 + offChart * 12, "font-size": 11, fill: "#cf222e" }, label + " (above the chart)"));
        return;
      }
      var y = TOP + ph - (w.per_second / yMax) * ph;
      box.appendChild(svg("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#cf222e", "stroke-dasharray": "6 4" }));
      box.appendChild(svg("text", { x: W - R - 4, y: y < TOP + 14 ? y + 12 : y - 4, "text-anchor": "end", "font-size": 11, fill: "#cf222e" }, label));
    });
    // 429s and retries as ticks under the axis.
    [[T.rate_limited, "#cf222e", 8, "429 answers"], [T.retries, "#bf8700", 20, "other retries"]].forEach(function (s) {
      s[0].forEach(function (c, i) {
        if (c > 0) {
          var t = svg("rect", { x: L + i * bw, y: TOP + ph + s[2], width: Math.max(bw, 2), height: 8, fill: s[1] });
          t.appendChild(svg("title", {}, "t+" + (i * secs) + "s: " + c + " " + s[3]));
          box.appendChild(t);
        }
      });
    });
    box.appendChild(svg("line", { x1: L, x2: W - R, y1: TOP + ph, y2: TOP + ph, stroke: "#57606a" }));
    box.appendChild(svg("line", { x1: L, x2: L, y1: TOP, y2: TOP + ph, stroke: "#57606a" }));
    box.appendChild(svg("text", { x: L - 4, y: TOP + 10, "text-anchor": "end", "font-size": 11 }, yMax.toFixed(yMax < 10 ? 1 : 0)));
    box.appendChild(svg("text", { x: L - 4, y: TOP + ph, "text-anchor": "end", "font-size": 11 }, "0"));
    var total = n * secs;
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      box.appendChild(svg("text", { x: L + f * pw, y: H - 4, "text-anchor": f === 0 ? "start" : (f === 1 ? "end" : "middle"), "font-size": 11 },
        "+" + fmtMs(Math.round(f * total * 1000))));
    });
    app.appendChild(el("div", { cls: "chart" }, [box]));
    app.appendChild(el("div", { cls: "legend" }, [
      el("span", null, [el("i", { style: "background:#0969da" }), "requests/s (" + secs + " s buckets)"]),
      el("span", null, [el("i", { style: "background:#cf222e" }), "429 answers"]),
      el("span", null, [el("i", { style: "background:#bf8700" }), "other retries"]),
      el("span", null, [el("i", { style: "background:#8c959f;opacity:.4" }), "paused"]),
      el("span", null, [el("i", { style: "border-top:2px dashed #cf222e;height:0" }), "configured windows (average rate)"]),
      M.events_dropped ? el("span", { text: M.events_dropped + " events not recorded" }) : null
    ]));
  })();

  // ---- error classes -------------------------------------------------------------------------
  var state = { step: "", status: "", cls: "", q: "", page: 0 };
  if (D.classes.length) {
    app.appendChild(el("h2", { text: "Errors by class (" + D.classes.length + ")" }));
    var ct = el("table", { id: "classes" });
    ct.appendChild(el("tr", null, [el("th", { cls: "num", text: "items" }), el("th", { text: "class (HTTP · API key · kind)" }),
      el("th", { text: "steps" }), el("th", { text: "message (exact, first item)" }), el("th", { text: "sample keys" })]));
    D.classes.forEach(function (c, i) {
      var show = el("a", { cls: "filter", text: "show these items" });
      show.addEventListener("click", function () { state.cls = String(i); state.status = ""; state.page = 0; sync(); });
      ct.appendChild(el("tr", { "data-class": String(i) }, [
        el("td", { cls: "num", text: fmt(c.count) }),
        el("td", null, [el("code", { text: c.label }), el("br"), show]),
        el("td", { text: c.steps.join(", ") }),
        el("td", null, [el("pre", { text: c.message }), c.distinct_messages > 1 ? el("div", { cls: "note", text: "+" + (c.distinct_messages - 1) + " other message(s) in this class" }) : null]),
        el("td", null, [el("pre", { text: c.sample_keys.join("\n") })])
      ]));
      ct.appendChild(el("tr", null, [el("td"), el("td", { colspan: "4" }, [el("code", { cls: "cmd", text: c.command })])]));
    });
    app.appendChild(ct);
    app.appendChild(el("p", { cls: "note", text: "The command re-runs every failed item of this report (--resume skips what succeeded or was skipped); --retry-unknown also sends the unknown ones again: check them first." }));
  }

  // ---- steps ------------------------------------------------------------------------------------
  app.appendChild(el("h2", { text: "Steps" }));
  var stt = el("table", { id: "steps" });
  stt.appendChild(el("tr", null, [el("th", { text: "step" })].concat(D.statuses.map(function (s) { return el("th", { cls: "num", text: s }); }))
    .concat([el("th", { cls: "num", text: "duration" }), el("th", { cls: "num", text: "requests" }), el("th", { cls: "num", text: "requests/s" })])));
  D.steps.forEach(function (s) {
    stt.appendChild(el("tr", { "data-step": s.id }, [el("td", null, [el("code", { text: s.id })])]
      .concat(D.statuses.map(function (st) { return el("td", { cls: "num", text: fmt(s.counts[st] || 0) }); }))
      .concat([el("td", { cls: "num", text: s.duration }), el("td", { cls: "num", text: fmt(s.requests) }), el("td", { cls: "num", text: String(s.rate) })])));
  });
  app.appendChild(stt);

  // ---- items ------------------------------------------------------------------------------------
  app.appendChild(el("h2", { text: "Items" }));
  var stepSel = el("select", { id: "f-step", "aria-label": "step" }, [el("option", { value: "", text: "all steps" })]
    .concat(D.steps.map(function (s, i) { return el("option", { value: String(i), text: s.id }); })));
  var statusSel = el("select", { id: "f-status", "aria-label": "status" }, [el("option", { value: "", text: "all statuses" })]
    .concat(D.statuses.map(function (s, i) { return el("option", { value: String(i), text: s }); })));
  var classSel = el("select", { id: "f-class", "aria-label": "error class" }, [el("option", { value: "", text: "all errors" })]
    .concat(D.classes.map(function (c, i) { return el("option", { value: String(i), text: c.label }); })));
  var search = el("input", { type: "search", id: "f-key", placeholder: "search key…", "aria-label": "key" });
  var prev = el("button", { id: "prev", text: "◀ prev" }), next = el("button", { id: "next", text: "next ▶" });
  var info = el("span", { id: "match-info", cls: "note" });
  app.appendChild(el("div", { cls: "controls" }, [stepSel, statusSel, D.classes.length ? classSel : null, search, prev, next, info]));
  var table = el("table", { id: "items" });
  table.appendChild(el("thead", null, [el("tr", null, ["step", "index", "key", "status", "attempts", "duration", "start", "HTTP", "line", "error / reason"]
    .map(function (h, i) { return el("th", { cls: [1, 4, 5, 6, 7, 8].indexOf(i) >= 0 ? "num" : "", text: h }); }))]));
  var tbody = el("tbody");
  table.appendChild(tbody);
  app.appendChild(table);

  var matches = [];
  function filter() {
    var st = state.step === "" ? -1 : Number(state.step);
    var ss = state.status === "" ? -1 : (state.status === "absent" ? -2 : Number(state.status));
    var sc = state.cls === "" ? -1 : Number(state.cls), q = state.q.toLowerCase();
    matches = [];
    for (var i = 0; i < D.rows.length; i++) {
      var r = D.rows[i];
      if ((st < 0 || r[STEP] === st) && (ss === -1 || r[STATUS] === ss) && (sc < 0 || r[CLASS] === sc) &&
        (q === "" || String(r[KEY]).toLowerCase().indexOf(q) >= 0)) { matches.push(i); }
    }
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var from = state.page * PAGE, to = Math.min(from + PAGE, matches.length);
    var frag = document.createDocumentFragment();
    for (var j = from; j < to; j++) {
      var r = D.rows[matches[j]], status = D.statuses[r[STATUS]];
      var msg = r[NOTE] !== null ? r[NOTE] : (r[CLASS] !== null ? D.classes[r[CLASS]].message : "");
      frag.appendChild(el("tr", { "data-key": String(r[KEY]), "data-status": status }, [
        el("td", { text: D.steps[r[STEP]].id }), el("td", { cls: "num", text: String(r[INDEX]) }),
        el("td", { cls: "mono", text: String(r[KEY]) }), el("td", { cls: stClass(status), text: status }),
        el("td", { cls: "num", text: String(r[ATTEMPTS]) }), el("td", { cls: "num", text: fmtMs(r[DUR]) }),
        el("td", { cls: "num", text: r[START] === null ? "" : "+" + fmtMs(r[START]) }),
        el("td", { cls: "num", text: r[HTTP] === null ? "" : String(r[HTTP]) }),
        el("td", { cls: "num", text: r[LINE] === null ? "" : String(r[LINE]) }),
        el("td", null, [el("pre", { text: msg })])
      ]));
    }
    tbody.replaceChildren(frag);
    info.textContent = fmt(matches.length) + " matching of " + fmt(D.rows.length) + " items" +
      (matches.length > PAGE ? " · page " + (state.page + 1) + " of " + fmt(pages) : "");
    info.setAttribute("data-matches", String(matches.length));
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }
  function writeHash() {
    var parts = [];
    if (state.step !== "") { parts.push("step=" + encodeURIComponent(D.steps[Number(state.step)].id)); }
    if (state.status !== "") {
      var absent = statusSel.querySelector("option[data-absent]");
      parts.push("status=" + encodeURIComponent(state.status === "absent" ? absent.textContent : D.statuses[Number(state.status)]));
    }
    if (state.cls !== "") { parts.push("class=" + state.cls); }
    if (state.q !== "") { parts.push("q=" + encodeURIComponent(state.q)); }
    var h = parts.join("&");
    if (location.hash.replace(/^#/, "") !== h) {
      try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); } catch (e) { /* some file:// contexts refuse it */ }
    }
  }
  function readHash() {
    var h = location.hash.replace(/^#/, "");
    state.step = ""; state.status = ""; state.cls = ""; state.q = "";
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="); if (i < 0) { return; }
      var k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      if (k === "step") { var si = D.steps.map(function (s) { return s.id; }).indexOf(v); state.step = si < 0 ? "" : String(si); }
      if (k === "status") {
        // A status no item has still filters: to nothing.
        var ti = D.statuses.indexOf(v);
        if (ti < 0 && !statusSel.querySelector("option[data-absent]")) {
          statusSel.appendChild(el("option", { value: "absent", "data-absent": "1", text: v }));
        }
        state.status = ti < 0 ? "absent" : String(ti);
      }
      if (k === "class" && D.classes[Number(v)]) { state.cls = v; }
      if (k === "q") { state.q = v; }
    });
  }
  function sync() {
    stepSel.value = state.step; statusSel.value = state.status; classSel.value = state.cls; search.value = state.q;
    filter(); draw(); writeHash();
  }
  stepSel.addEventListener("change", function () { state.step = stepSel.value; state.page = 0; sync(); });
  statusSel.addEventListener("change", function () { state.status = statusSel.value; state.page = 0; sync(); });
  classSel.addEventListener("change", function () { state.cls = classSel.value; state.page = 0; sync(); });
  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.q = search.value; state.page = 0; sync(); }, 150);
  });
  prev.addEventListener("click", function () { state.page -= 1; draw(); });
  next.addEventListener("click", function () { state.page += 1; draw(); });
  window.addEventListener("hashchange", function () { readHash(); state.page = 0; sync(); });
  readHash();
  sync();

  // Since the navigation started (parsing the page included), and for this script alone.
  document.body.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-script-ms", String(Math.round(performance.now() - t0)));
  document.body.setAttribute("data-ready", "1");
})();
