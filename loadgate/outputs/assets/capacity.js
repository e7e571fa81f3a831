/* loadgate report: a capacity search's steps against users (throughput; p50/p95/p99 with the alert
   levels), drawn with report.js's helpers (window.loadgateCharts). Each step is a dot coloured by its
   status; the knee (where throughput stops growing) and the highest passing step are marked.
   Every string from the data goes to the page as text (canvas, legend), never as markup. */
(function () {
  "use strict";
  var C = window.loadgateCharts;
  if (!C || !C.D.capacity) return;
  var K = C.D.capacity, make = C.make, levelLines = C.levelLines, fitRange = C.fitRange, num = C.num;
  var STATUS_COLOR = { pass: "#1e7b34", fail: "#c62828", unresolved: "#b45f06", inconclusive: "#5f6368" };

  function statusDots(u) {
    var ctx = u.ctx, px = window.devicePixelRatio || 1;
    ctx.save();
    for (var si = 1; si < u.series.length; si++) {
      if (!u.series[si].show) continue;
      u.data[si].forEach(function (v, i) {
        if (v == null) return;
        var x = u.valToPos(u.data[0][i], "x", true), y = u.valToPos(v, "y", true), r = 4.5 * px;
        var st = K.status[i];
        ctx.beginPath();
        if (st === "fail") ctx.rect(x - r, y - r, 2 * r, 2 * r); else ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fillStyle = STATUS_COLOR[st] || "#5f6368";
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 1.5 * px;
        ctx.fill();
        ctx.stroke();
      });
    }
    ctx.restore();
  }
  function vline(users, label) {
    return function (u) {
      if (users == null) return;
      var ctx = u.ctx, b = u.bbox, px = window.devicePixelRatio || 1, x = u.valToPos(users, "x", true);
      ctx.save();
      ctx.strokeStyle = ctx.fillStyle = "#59636e";
      ctx.lineWidth = px;
      ctx.setLineDash([2 * px, 3 * px]);
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      ctx.font = (11 * px) + "px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText(label, x, b.top - 5 * px);
      ctx.restore();
    };
  }
  var X = K.x_label || "users", XD = K.x_label ? 1 : 0;  // a search over arrival rate: the rate offered
  var usersAxis = { label: X, values: function (u, splits) { return splits.map(function (v) { return num(v, XD); }); } };
  var xScale = { x: { time: false, range: function (u, min, max) { var pad = Math.max((max - min) * 0.05, 1); return [Math.max(0, min - pad), max + pad]; } } };
  var knee = K.knee ? K.knee.users : null;

  make("capacity-throughput", {
    height: 260, padding: [22, null, null, null],
    scales: Object.assign({ y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } }, xScale),
    axes: [usersAxis, { scale: "y", size: 60, label: "requests/s" }],
    series: [{ label: X, value: function (u, v) { return v == null ? "–" : num(v, XD); } },
             { label: "throughput", scale: "y", stroke: "#1f5fbf", width: 1.5, points: { show: false },
               value: function (u, v, si, i) { return v == null ? "–" : num(v, 1) + " req/s (" + K.status[i] + ")"; } }]
  }, [K.users, K.throughput], [statusDots, vline(knee, knee == null ? "" : "knee ≈ " + num(knee, XD) + " " + X)]);

  var levels = (K.levels || []).map(function (l) {
    return { value: l.value, level: l.level, scale: "y",
             label: l.metric + (l.request ? " [" + l.request + "]" : "") + " alert " + l.text };
  });
  make("capacity-latency", {
    height: 260, padding: [22, null, null, null],
    scales: Object.assign({ y: { range: fitRange(levels, 4) } }, xScale),
    axes: [usersAxis, { scale: "y", size: 60, label: "response time (ms)" }],
    series: [{ label: X, value: function (u, v) { return v == null ? "–" : num(v, XD); } }].concat(
      [["p50", "#0f8b8d"], ["p95", "#6a3d9a"], ["p99", "#d6337f"]].map(function (p) {
        return { label: p[0], scale: "y", stroke: p[1], width: 1.5, points: { show: false }, spanGaps: true,
                 value: function (u, v) { return v == null ? "–" : num(v, 1) + " ms"; } };
      }))
  }, [K.users, K.p50, K.p95, K.p99], [levelLines(levels, true), statusDots,
                                      vline(K.max_users, K.max_users == null ? "" : "max " + num(K.max_users, XD))]);
})();

/* The capacity plan: capacity and the declared peak across releases (by release date), and the projection
   beyond this run: the capacity along its trend, the peak along its growth, with the runway marked. */
(function () {
  "use strict";
  var C = window.loadgateCharts;
  if (!C || !C.D.plan) return;
  var P = C.D.plan, num = C.num, two = C.two;
  function day(t) {
    var d = new Date(t * 1000);
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate());
  }
  function marks(u) {
    var ctx = u.ctx, b = u.bbox, px = window.devicePixelRatio || 1;
    ctx.save();
    ctx.font = (11 * px) + "px system-ui, sans-serif";
    ctx.textAlign = "right";
    P.marks.forEach(function (m, i) {
      var x = u.valToPos(m.at, "x", true);
      ctx.strokeStyle = ctx.fillStyle = i === 0 ? "#c62828" : "#b45f06";
      ctx.lineWidth = px;
      ctx.setLineDash([4 * px, 3 * px]);
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      ctx.fillText(m.label + " " + day(m.at), x - 4 * px, b.top + (12 + 13 * i) * px);
    });
    ctx.restore();
  }
  var n = P.runs.length;
  C.make("plan-chart", {
    height: 300, padding: [16, null, null, null],
    tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
    scales: { x: { time: true, range: function (u, min, max) { var pad = Math.max((max - min) * 0.03, 86400); return [min - pad, max + pad]; } },
              y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
    axes: [{ label: "release date (UTC)", space: 90 }, { scale: "y", size: 60, label: P.unit }],
    series: [{ label: "date", value: function (u, v, si, i) {
               if (v == null) return "–";
               return day(v) + (i != null && i < n ? " · " + P.runs[i].release + " · " + P.runs[i].run_id +
                                (P.runs[i].current ? " (this run)" : "") : " (projected)");
             } },
             { label: "capacity", scale: "y", stroke: "#1f5fbf", width: 2, spanGaps: false, points: { show: true, size: 8 },
               value: function (u, v) { return v == null ? "–" : num(v, 1) + " " + P.unit; } },
             { label: "peak", scale: "y", stroke: "#6a3d9a", width: 1.5, points: { show: true, size: 6 },
               value: function (u, v) { return v == null ? "–" : num(v, 1) + " " + P.unit; } },
             { label: "capacity, projected", scale: "y", stroke: "#1f5fbf", width: 1.5, dash: [6, 4], spanGaps: true,
               points: { show: false }, value: function (u, v) { return v == null ? "–" : num(v, 1) + " " + P.unit; } },
             { label: "peak, projected", scale: "y", stroke: "#6a3d9a", width: 1.5, dash: [2, 3], spanGaps: true,
               points: { show: false }, value: function (u, v) { return v == null ? "–" : num(v, 1) + " " + P.unit; } }]
  }, [P.x, P.capacity, P.peak, P.projected_capacity, P.projected_peak], [marks]);
})();
