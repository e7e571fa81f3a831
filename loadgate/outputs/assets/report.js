/* loadgate report: sortable tables and this run's charts (uPlot), from the JSON block #chart-data.
   The trend of the last runs is drawn by trend.js with the helpers this file exports.
   Every string from the data goes to the page as text (textContent, canvas), never as markup. */
(function () {
  "use strict";

  // --- sortable tables ---------------------------------------------------------------------
  function sortable(table) {
    var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
    heads.forEach(function (th, col) {
      if (!th.classList.contains("sortable")) return;
      th.tabIndex = 0;
      function sort() {
        var body = table.tBodies[0];
        var all = Array.prototype.slice.call(body.rows);
        var rows = all.filter(function (r) { return !r.classList.contains("total") && r.cells.length > col; });
        var rest = all.filter(function (r) { return rows.indexOf(r) < 0; });
        var numeric = rows.length > 0 && rows[0].cells[col].hasAttribute("data-v");
        var current = th.getAttribute("aria-sort");
        var dir = current ? (current === "ascending" ? "descending" : "ascending") : (numeric ? "descending" : "ascending");
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        function key(r) {
          var c = r.cells[col];
          if (!numeric) return c.textContent.trim().toLowerCase();
          var v = c.getAttribute("data-v");
          return v === "" ? -Infinity : parseFloat(v);
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), c = x < y ? -1 : x > y ? 1 : 0;
          return dir === "ascending" ? c : -c;
        });
        rows.concat(rest).forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);

  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") return;
  var D = JSON.parse(source.textContent);

  // --- helpers -----------------------------------------------------------------------------
  var C = { users: "#7d8b99", rps: "#1f5fbf", p50: "#2e7d32", p95: "#ef6c00", p99: "#c62828",
            err: "#c62828", errRate: "#6a1b9a", target: "#b45f06", alert: "#c62828" };
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939"];
  var SHADE = { "ramp-up": "rgba(120,150,190,0.22)", "warmup": "rgba(240,180,60,0.25)", "stopping": "rgba(120,130,140,0.16)",
                "stall": "rgba(214,39,40,0.22)" };
  var drawn = 0;
  var charts = [];

  function done() {
    drawn += 1;
    document.body.setAttribute("data-charts-drawn", String(drawn));
  }
  function markDrawn(u) {
    if (!u.lgDrawn) { u.lgDrawn = true; done(); }
  }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function elapsed(s) {
    if (s == null) return "";
    var neg = s < 0, t = Math.round(Math.abs(s)), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60);
    return (neg ? "-" : "") + (h ? h + ":" + two(m) : m) + ":" + two(t % 60);
  }
  function num(v, digits) {
    if (v == null) return "–";
    return v.toLocaleString("en-US", { maximumFractionDigits: digits == null ? 1 : digits });
  }
  function pctOfNines(x) {
    if (x == null) return "";
    var q = 100 * (1 - Math.pow(10, -x));
    var d = Math.max(0, Math.ceil(x - 1e-9) - 1);
    return parseFloat(q.toFixed(Math.min(d + 1, 6))) + "%";
  }
  function width(el) { return Math.max(280, el.clientWidth || 600); }
  function empty(el, text) {
    var p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    el.appendChild(p);
    done();
  }
  var timeIncrs = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function timeAxis() {
    return { label: "time since start", values: function (u, splits) { return splits.map(elapsed); },
             incrs: timeIncrs, space: 60 };
  }

  // Shades the spans the analysis left out (ramp-up, warmup, stopping) behind the series.
  function shading(u) {
    var ctx = u.ctx, b = u.bbox;
    ctx.save();
    (D.phases || []).forEach(function (p) {
      var x0 = Math.max(b.left, u.valToPos(p.from, "x", true));
      var x1 = Math.min(b.left + b.width, u.valToPos(p.to, "x", true));
      if (x1 <= x0) return;
      ctx.fillStyle = SHADE[p.kind] || SHADE.stopping;
      ctx.fillRect(x0, b.top, x1 - x0, b.height);
    });
    ctx.restore();
  }

  // Dashed horizontal lines at threshold levels, labelled without overlap; levels above the scale get an arrow
  // label (unless quietAbove: the trend charts list their levels above the chart instead).
  function levelLines(levels, quietAbove) {
    return function (u) {
      var ctx = u.ctx, b = u.bbox, px = window.devicePixelRatio || 1, gap = 13 * px, above = [], labels = [];
      ctx.save();
      ctx.font = (11 * px) + "px system-ui, sans-serif";
      levels.forEach(function (l) {
        var y = u.valToPos(l.value, l.scale, true);
        var color = l.level === "alert" ? C.alert : C.target;
        if (y < b.top) {
          if (!quietAbove) above.push({ text: "↑ " + l.label + " (above the chart)", color: color });
          return;
        }
        if (y > b.top + b.height) return;
        ctx.strokeStyle = ctx.fillStyle = color;
        ctx.lineWidth = 1.5 * px;
        ctx.setLineDash([6 * px, 4 * px]);
        ctx.beginPath();
        ctx.moveTo(b.left, y);
        ctx.lineTo(b.left + b.width, y);
        ctx.stroke();
        if (l.x != null) {  // the percentile the threshold is on: the curve must pass under the dot
          var x = u.valToPos(l.x, "x", true);
          ctx.setLineDash([2 * px, 3 * px]);
          ctx.beginPath();
          ctx.moveTo(x, b.top);
          ctx.lineTo(x, b.top + b.height);
          ctx.stroke();
          ctx.beginPath();
          ctx.arc(x, y, 3.5 * px, 0, 2 * Math.PI);
          ctx.fill();
        }
        labels.push({ text: l.label, color: color, y: y - 3 * px });
      });
      labels.sort(function (a, b2) { return a.y - b2.y; });
      var last = -Infinity;
      ctx.textAlign = "right";
      labels.forEach(function (l) {
        var y = Math.max(l.y, last + gap);
        last = y;
        ctx.fillStyle = "rgba(255,255,255,0.85)";
        var w = ctx.measureText(l.text).width;
        ctx.fillRect(b.left + b.width - 6 * px - w, y - 10 * px, w + 4 * px, 13 * px);
        ctx.fillStyle = l.color;
        ctx.fillText(l.text, b.left + b.width - 4 * px, y);
      });
      ctx.textAlign = "left";
      above.forEach(function (l, i) {
        var y = b.top + (i + 1) * gap;
        ctx.fillStyle = "rgba(255,255,255,0.85)";
        ctx.fillRect(b.left + 4 * px, y - 10 * px, ctx.measureText(l.text).width + 4 * px, 13 * px);
        ctx.fillStyle = l.color;
        ctx.fillText(l.text, b.left + 6 * px, y);
      });
      ctx.restore();
    };
  }

  function levelsFor(test, scale, factor, withX) {
    return (D.levels || []).filter(test).map(function (l) {
      var m = /^p(\d+(?:\.\d+)?)$/.exec(l.metric || "");
      var x = withX && m ? -Math.log10(1 - parseFloat(m[1]) / 100) : null;
      return { value: l.value * (factor || 1), level: l.level, scale: scale, x: x,
               label: l.metric + (l.request ? " [" + l.request + "]" : "") + " " + l.level + " " + l.text };
    });
  }
  // y range showing the data and the threshold levels near it (within `limit` times the data's top);
  // farther levels get an arrow label instead of squashing the data flat.
  function fitRange(levels, limit) {
    return function (u, min, max) {
      var base = max;
      if (!(base > 0)) {  // no data above zero (no errors): scale to the nearest level, the target if any
        var lv = levels.filter(function (l) { return l.level === "target"; });
        base = Math.min.apply(null, (lv.length ? lv : levels).map(function (l) { return l.value; }).concat([Infinity]));
      }
      var top = max > 0 ? max : 0;
      levels.forEach(function (l) { if (l.value <= base * limit) top = Math.max(top, l.value); });
      return [0, top > 0 ? top * 1.08 : 1];
    };
  }
  function fitLogRange(levels, limit) {
    return function (u, min, max) {
      var top = max;
      levels.forEach(function (l) { if (l.value <= max * limit) top = Math.max(top, l.value); });
      return uPlot.rangeLog(Math.max(min, 1e-3), Math.max(top * 1.2, min * 10), 10, true);
    };
  }

  function make(id, opts, data, extraDraw) {
    var el = document.getElementById(id);
    if (!el) return;
    opts.width = width(el);
    opts.height = opts.height || 260;
    opts.hooks = opts.hooks || {};
    opts.hooks.draw = (opts.hooks.draw || []).concat(extraDraw || [], [markDrawn]);
    opts.legend = opts.legend || { live: true };
    var u = new uPlot(opts, data, el);
    charts.push([u, el]);
  }


  // The trend charts (trend.js, inlined after this file) draw with the same helpers.
  window.loadgateCharts = { D: D, make: make, levelLines: levelLines, fitRange: fitRange, num: num, two: two };

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c[0].setSize({ width: width(c[1]), height: c[0].height }); });
    }, 150);
  });

  if (!D.series) return;  // no samples: the trend is all there is to draw

  var S = D.series, sync = { key: "lg-time" };

  // --- 1. users and throughput -------------------------------------------------------------
  var rpsLevels = levelsFor(function (l) { return l.metric === "throughput"; }, "rps");
  make("chart-load", {
    cursor: { sync: sync },
    scales: { x: { time: false }, users: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
              rps: { range: fitRange(rpsLevels, 3) } },
    axes: [timeAxis(), { scale: "users", label: "users", stroke: C.users },
           { scale: "rps", side: 1, label: "requests/s", stroke: C.rps, grid: { show: false } }],
    series: [{ label: "time", value: function (u, v) { return elapsed(v); } },
             { label: "active users", scale: "users", stroke: C.users, width: 2,
               paths: uPlot.paths.stepped({ align: 1 }), points: { show: false },
               value: function (u, v) { return num(v, 0); } },
             { label: "throughput (req/s)", scale: "rps", stroke: C.rps, width: 1.5,
               value: function (u, v) { return num(v, 1); } }],
    hooks: { drawClear: [shading] }
  }, [S.t, S.users, S.throughput], [levelLines(rpsLevels)]);

  // --- 2. latency percentiles over time ----------------------------------------------------
  var latLevels = levelsFor(function (l) { return !l.request && ["p50", "p95", "p99"].indexOf(l.metric) >= 0; }, "ms");
  // Paced users: the latency from the schedule (dashed) beside the raw one, same colours.
  var intended = S.intended_p95 ? ["p95", "p99"] : [];
  make("chart-latency", {
    cursor: { sync: sync },
    scales: { x: { time: false }, ms: { range: fitRange(latLevels, 2.5) } },
    axes: [timeAxis(), { scale: "ms", label: "response time (ms)" }],
    series: [{ label: "time", value: function (u, v) { return elapsed(v); } }].concat(
      ["p50", "p95", "p99"].map(function (k) {
        return { label: k, scale: "ms", stroke: C[k], width: 1.5, value: function (u, v) { return v == null ? "–" : num(v, 1) + " ms"; } };
      }), intended.map(function (k) {
        return { label: k + " intended", scale: "ms", stroke: C[k], width: 1.5, dash: [6, 4],
                 value: function (u, v) { return v == null ? "–" : num(v, 1) + " ms"; } };
      })),
    hooks: { drawClear: [shading] }
  }, [S.t, S.p50, S.p95, S.p99].concat(intended.map(function (k) { return S["intended_" + k]; })),
     [levelLines(latLevels)]);

  // --- 3. distribution by percentile -------------------------------------------------------
  var G = (D.curves && D.curves.groups) || [];
  var distEl = document.getElementById("chart-distribution");
  if (distEl && !G.length) {
    empty(distEl, "No response times in the analysis window.");
  } else if (distEl) {
    var joined = uPlot.join(G.map(function (g) { return [g.x, g.y.map(function (v) { return v > 0 ? v : null; })]; }));
    var distLevels = levelsFor(function (l) { return /^p\d/.test(l.metric || ""); }, "ms", 1, true);
    var xmax = Math.max.apply(null, G.map(function (g) { return g.x[g.x.length - 1]; }).concat([2])) + 0.4;
    make("chart-distribution", {
      height: 320,
      scales: { x: { time: false, range: [0, xmax] }, ms: { distr: 3, log: 10, range: fitLogRange(distLevels, 100) } },
      axes: [{ label: "share of requests at or under (percentile)", space: 40,
               splits: function (u) { var s = []; for (var i = 0; i <= Math.floor(xmax); i++) s.push(i); return s; },
               values: function (u, splits) { return splits.map(pctOfNines); } },
             { scale: "ms", label: "response time (ms, log)", size: 60,
               values: function (u, splits) { return splits.map(function (v) { return num(v, v < 1 ? 2 : 0); }); } }],
      series: [{ label: "percentile", value: function (u, v) { return pctOfNines(v); } }].concat(G.map(function (g, i) {
        var overall = g.kind === "all", req = g.kind === "requirement";
        return { label: g.label + " (" + num(g.requests, 0) + ")", scale: "ms", spanGaps: true,
                 stroke: overall ? "#222" : PALETTE[i % PALETTE.length], width: overall ? 2.5 : req ? 2 : 1.4,
                 dash: req ? [8, 4] : undefined, points: { show: true, size: overall ? 5 : 3 },
                 value: function (u, v) { return v == null ? "–" : num(v, 1) + " ms"; } };
      }))
    }, joined, [levelLines(distLevels)]);
  }

  // --- 4. errors over time -----------------------------------------------------------------
  var rate = S.requests.map(function (n, i) { return n ? 100 * S.failures[i] / n : null; });
  var errLevels = levelsFor(function (l) { return l.metric === "error_rate"; }, "pct", 100);
  make("chart-errors", {
    cursor: { sync: sync },
    scales: { x: { time: false }, n: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
              pct: { range: fitRange(errLevels, 5) } },
    axes: [timeAxis(), { scale: "n", label: "failed requests" + (S.bucket_s > 1 ? " per " + S.bucket_s + " s" : " per second"), stroke: C.err },
           { scale: "pct", side: 1, label: "error rate (%)", stroke: C.errRate, grid: { show: false } }],
    series: [{ label: "time", value: function (u, v) { return elapsed(v); } },
             { label: "failures", scale: "n", stroke: C.err, fill: "rgba(198,40,40,0.45)", width: 1,
               paths: uPlot.paths.bars({ size: [0.9, 40] }), value: function (u, v) { return num(v, 0); } },
             { label: "error rate", scale: "pct", stroke: C.errRate, width: 1.5,
               value: function (u, v) { return v == null ? "–" : num(v, 2) + "%"; } }],
    hooks: { drawClear: [shading] }
  }, [S.t, S.failures, rate], [levelLines(errLevels)]);

  // --- 5. latency against active users -----------------------------------------------------
  var idx = [];
  S.t.forEach(function (t, i) { if (S.users[i] != null && S.requests[i] > 0) idx.push(i); });
  idx.sort(function (a, b) { return S.users[a] - S.users[b] || a - b; });
  var usersEl = document.getElementById("chart-users");
  if (usersEl && !idx.length) {
    empty(usersEl, "No seconds with both a user count and requests.");
  } else if (usersEl) {
    var pick = function (arr) { return idx.map(function (i) { return arr[i]; }); };
    var dots = function (label, color) {
      return { label: label, scale: "ms", stroke: color, fill: color, width: 0, paths: function () { return null; },
               points: { show: true, size: 5, space: 0, fill: color, stroke: color },
               value: function (u, v) { return v == null ? "–" : num(v, 1) + " ms"; } };
    };
    make("chart-users", {
      cursor: { points: { show: false } },
      scales: { x: { time: false, range: function (u, min, max) { return [0, Math.max(1, max) * 1.05]; } },
                ms: { range: fitRange(latLevels, 2.5) } },
      axes: [{ label: "active users" }, { scale: "ms", label: "response time (ms)" }],
      series: [{ label: "users", value: function (u, v) { return num(v, 0); } }, dots("p50", C.p50), dots("p95", C.p95)]
    }, [pick(S.users), pick(S.p50), pick(S.p95)], [levelLines(latLevels.filter(function (l) {
      return l.label.indexOf("p50") === 0 || l.label.indexOf("p95") === 0;
    }))]);
  }

  // --- 6. load generator CPU ----------------------------------------------------------------
  var P = D.cpu || [];
  if (P.length && document.getElementById("chart-cpu")) {
    var cpuData = uPlot.join(P.map(function (p) { return [p.t, p.cpu]; }));
    var saturation = [{ label: "saturated >90%", value: 90, level: "alert", scale: "pct" }];
    make("chart-cpu", {
      cursor: { sync: sync },
      scales: { x: { time: false }, pct: { range: function (u, min, max) { return [0, Math.max(100, max) * 1.05]; } } },
      axes: [timeAxis(), { scale: "pct", label: "CPU (% of one core)" }],
      series: [{ label: "time", value: function (u, v) { return elapsed(v); } }].concat(P.map(function (p, i) {
        return { label: p.label, scale: "pct", stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
                 value: function (u, v) { return v == null ? "–" : num(v, 0) + "%"; } };
      })),
      hooks: { drawClear: [shading] }
    }, cpuData, [levelLines(saturation)]);
  }

  // --- 7. resources of the system under test ------------------------------------------------
  var R = D.resources || [];
  if (R.length && document.getElementById("chart-resources")) {
    var resLevels = levelsFor(function (l) { return ["cpu", "memory", "disk"].indexOf(l.metric) >= 0; }, "pct");
    make("chart-resources", {
      cursor: { sync: sync },
      scales: { x: { time: false }, pct: { range: function (u, min, max) { return [0, Math.max(100, max) * 1.05]; } } },
      axes: [timeAxis(), { scale: "pct", label: "% (CPU of all cores, memory, fullest disk)" }],
      series: [{ label: "time", value: function (u, v) { return elapsed(v); } }].concat(R.map(function (r, i) {
        return { label: r.label, scale: "pct", stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
                 value: function (u, v) { return v == null ? "–" : num(v, 1) + "%"; } };
      })),
      hooks: { drawClear: [shading] }
    }, uPlot.join(R.map(function (r) { return [r.t, r.v]; })), [levelLines(resLevels)]);
  }

  // --- 8. open model: arrival rate offered and achieved, dropped, busy users of the pool -----
  (D.arrival || []).forEach(function (a, i) {
    if (!document.getElementById("chart-arrival-" + i)) return;
    var pool = a.max_users ? [{ label: "max_users " + a.max_users, value: a.max_users, level: "target", scale: "users" }] : [];
    var per = a.bucket_s > 1 ? " per " + a.bucket_s + " s" : " per second";
    make("chart-arrival-" + i, {
      cursor: { sync: sync },
      scales: { x: { time: false }, rate: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
                users: { range: function (u, min, max) { return [0, Math.max(1, max, a.max_users || 0) * 1.1]; } } },
      axes: [timeAxis(), { scale: "rate", label: "iterations/s (dropped" + per + ")", stroke: C.rps },
             { scale: "users", side: 1, label: "busy users", stroke: C.users, grid: { show: false } }],
      series: [{ label: "time", value: function (u, v) { return elapsed(v); } },
               { label: "offered (scheduled/s)", scale: "rate", stroke: "#222", width: 1.5, dash: [6, 4],
                 value: function (u, v) { return v == null ? "–" : num(v, 1); } },
               { label: "achieved (started/s)", scale: "rate", stroke: C.rps, width: 1.5,
                 value: function (u, v) { return v == null ? "–" : num(v, 1); } },
               { label: "dropped", scale: "rate", stroke: C.err, fill: "rgba(198,40,40,0.45)", width: 1,
                 paths: uPlot.paths.bars({ size: [0.9, 40] }), value: function (u, v) { return num(v, 0); } },
               { label: "busy users (peak)", scale: "users", stroke: C.users, width: 1.5,
                 paths: uPlot.paths.stepped({ align: 1 }), points: { show: false },
                 value: function (u, v) { return v == null ? "–" : num(v, 0); } }],
      hooks: { drawClear: [shading] }
    }, [a.t, a.offered, a.achieved, a.dropped, a.busy], [levelLines(pool)]);
  });

})();
