/* loadgate report: the trend of the last runs from the history, per requirement, one chart per unit
   (ms, error rate, throughput), drawn with report.js's helpers (window.loadgateCharts).
   Every string from the data goes to the page as text (canvas, legend), never as markup. */
(function () {
  "use strict";
  var C = window.loadgateCharts;
  if (!C) return;
  var D = C.D, make = C.make, levelLines = C.levelLines, fitRange = C.fitRange, num = C.num, two = C.two;

  var STATUS_COLOR = { pass: "#1e7b34", warn: "#b45f06", fail: "#c62828" };
  var LINES = ["#1f5fbf", "#6a3d9a", "#0f8b8d", "#8c564b", "#444c56", "#d6337f", "#7a7a00", "#393b79"];
  var UNIT = { ms: { factor: 1, suffix: " ms", digits: 1, limit: 2.5 },
               ratio: { factor: 100, suffix: "%", digits: 2, limit: 5 },
               "req/s": { factor: 1, suffix: " req/s", digits: 1, limit: 3 },
               "%": { factor: 1, suffix: "%", digits: 1, limit: 1.5 } };
  function utcParts(t) {
    var d = new Date(t * 1000);
    return { date: d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()),
             time: two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()), sec: ":" + two(d.getUTCSeconds()) };
  }
  // Dates at midnight ticks and on the first tick of each day, clock times in between (seconds on short spans).
  function runAxis() {
    return { label: "run start (UTC)", space: 90, size: 56,
             values: function (u, splits) {
               var span = u.scales.x.max - u.scales.x.min, prev = null;
               return splits.map(function (t) {
                 var p = utcParts(t), midnight = p.time === "00:00" && p.sec === ":00";
                 var label = midnight && span > 3600 ? p.date : p.time + (span < 900 ? p.sec : "");
                 if (!midnight && p.date !== prev) label += "\n" + p.date;
                 prev = p.date;
                 return label;
               });
             } };
  }
  // A dot per run and series, shaped and coloured by that threshold's status in that run.
  function statusMarks(statuses) {
    return function (u) {
      var ctx = u.ctx, px = window.devicePixelRatio || 1;
      ctx.save();
      for (var si = 1; si < u.series.length; si++) {
        if (!u.series[si].show) continue;
        u.data[si].forEach(function (v, i) {
          if (v == null) return;
          var x = u.valToPos(u.data[0][i], "x", true), y = u.valToPos(v, u.series[si].scale, true);
          var st = statuses[si - 1][i], color = STATUS_COLOR[st], r = 4.5 * px;
          ctx.beginPath();
          if (st === "fail") ctx.rect(x - r, y - r, 2 * r, 2 * r);
          else if (st === "warn") { ctx.moveTo(x, y - r * 1.3); ctx.lineTo(x + r * 1.3, y); ctx.lineTo(x, y + r * 1.3); ctx.lineTo(x - r * 1.3, y); ctx.closePath(); }
          else ctx.arc(x, y, r, 0, 2 * Math.PI);
          ctx.lineWidth = (color ? 1.5 : 2) * px;
          ctx.strokeStyle = color ? "#fff" : "#5f6368";
          ctx.fillStyle = color || "#fff";
          ctx.fill();
          ctx.stroke();
        });
      }
      ctx.restore();
    };
  }
  // A dotted vertical line at the run this report is about.
  function thisRun(runs) {
    return function (u) {
      var at = -1;
      runs.forEach(function (r, i) { if (r.current) at = i; });
      if (at < 0) return;
      var ctx = u.ctx, b = u.bbox, px = window.devicePixelRatio || 1, x = u.valToPos(u.data[0][at], "x", true);
      ctx.save();
      ctx.strokeStyle = ctx.fillStyle = "#59636e";
      ctx.lineWidth = px;
      ctx.setLineDash([2 * px, 3 * px]);
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      ctx.font = (11 * px) + "px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.fillText("this run", x + 3 * px, b.top - 5 * px);  // in the top padding, clear of the data
      ctx.restore();
    };
  }
  (D.trend || []).forEach(function (t, ti) {
    var runs = t.runs || [];
    if (runs.length < 2) return;
    var xs = runs.map(function (r) { return r.started; });
    (t.charts || []).forEach(function (c, ci) {
      var unit = UNIT[c.unit] || UNIT.ms, key = "y";
      var levels = (c.levels || []).map(function (l) {
        return { value: l.value * unit.factor, level: l.level, scale: key,
                 label: l.metric + (l.request ? " [" + l.request + "]" : "") + " " + l.level + " " + l.text };
      });
      make("trend-" + ti + "-" + ci, {
        height: 230,
        padding: [20, null, null, null],
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        cursor: { sync: { key: "lg-trend-" + ti } },
        hooks: { ready: [function (u) { u.setLegend({ idx: runs.length - 1 }); }] },  // the legend shows this run
        scales: { x: { time: true, range: function (u, min, max) {
                    var pad = Math.max((max - min) * 0.05, 5);
                    return [min - pad, max + pad]; } },
                  y: { range: fitRange(levels, unit.limit) } },
        axes: [runAxis(), { scale: key, size: 60, label: { ms: "response time (ms)", ratio: "error rate (%)",
                                                          "req/s": "requests/s" }[c.unit] }],
        series: [{ label: "run", value: function (u, v, si, i) {
                   if (i == null || !runs[i]) return "–";
                   var r = runs[i], p = utcParts(r.started);
                   return p.date + " " + p.time + p.sec + " · " + r.run_id + " · " + String(r.verdict || "?").toUpperCase() +
                          (r.current ? " (this run)" : "");
                 } }].concat(c.series.map(function (s, si) {
                   return { label: s.label, scale: key, stroke: LINES[si % LINES.length], width: 1.5, spanGaps: true,
                            points: { show: false },
                            value: function (u, v, sidx, i) {
                              if (v == null) return "–";
                              return num(v, unit.digits) + unit.suffix + (s.status[i] ? " (" + s.status[i] + ")" : "");
                            } };
                 }))
      }, [xs].concat(c.series.map(function (s) {
        return s.values.map(function (v) { return v == null ? null : v * unit.factor; });
      })), [levelLines(levels, true), thisRun(runs), statusMarks(c.series.map(function (s) { return s.status; }))]);
    });
  });

})();
