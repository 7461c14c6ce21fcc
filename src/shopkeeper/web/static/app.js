// shopkeeper dashboard: draws each [data-chart] with uPlot, at the width of its box, again after htmx swaps.
// The figures are also in a table beside every chart; without JavaScript, the table is what shows.
(function () {
  "use strict";
  var COLOURS = ["#0b5cad", "#c2410c", "#1b6e35", "#7c3aed", "#a32020", "#0e7490"];

  function axisValues(spec) {
    if (spec.x_time) { return undefined; }
    var names = spec.x_text || spec.x;
    return function (u, splits) {
      var room = Math.max(1, Math.floor(u.bbox.width / (window.devicePixelRatio || 1) / 56));
      var step = Math.max(1, Math.ceil(names.length / room));
      return splits.map(function (v) {
        var i = Math.round(v);
        return i === v && names[i] !== undefined && i % step === 0 ? String(names[i]) : "";
      });
    };
  }

  function build(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var bars = spec.kind === "bars";
    var xs = spec.x_time ? spec.x : spec.x.map(function (_, i) { return i; });
    var data = [xs];
    var series = [{ label: spec.x_label }];
    var bands = [];
    spec.series.forEach(function (s, k) {
      var colour = COLOURS[k % COLOURS.length];
      data.push(s.values);
      series.push({ label: s.label, stroke: colour, width: 2, fill: bars ? colour + "cc" : undefined,
        paths: bars && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : undefined, points: { show: !bars } });
      if (s.low && s.high) {
        var at = data.length;
        data.push(s.high); data.push(s.low);
        series.push({ label: s.label + " (95% CI, high)", stroke: colour + "55", width: 1, dash: [4, 4] });
        series.push({ label: s.label + " (95% CI, low)", stroke: colour + "55", width: 1, dash: [4, 4] });
        bands.push({ series: [at, at + 1], fill: colour + "22" });
      }
    });
    var width = Math.max(240, el.clientWidth || 320);
    var opts = {
      width: width, height: width < 500 ? 200 : 260, series: series, bands: bands,
      scales: {
        x: { time: !!spec.x_time, range: bars ? function (u, lo, hi) { return [lo - 0.5, hi + 0.5]; } : undefined },
        // bars start at zero, or their heights mislead
        y: { range: bars ? function (u, lo, hi) { return [Math.min(0, lo), hi > 0 ? hi * 1.05 : 1]; } : undefined }
      },
      axes: [
        { label: spec.x_label, values: axisValues(spec), space: bars ? 10 : 50, incrs: bars ? [1] : undefined },
        { label: spec.y_label + (spec.units ? " (" + spec.units + ")" : ""), size: 60 }
      ],
      legend: { show: true }, cursor: { points: { show: false } }
    };
    el.innerHTML = "";
    var plot = new uPlot(opts, data, el);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = Math.max(240, el.clientWidth);
        if (Math.abs(w - plot.width) > 8) { plot.setSize({ width: w, height: w < 500 ? 200 : 260 }); }
      }).observe(el);
    }
  }

  function drawAll(root) {
    if (!window.uPlot) { return; }
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.getAttribute("data-drawn")) { return; }
      el.setAttribute("data-drawn", "1");
      try { build(el); } catch (e) { el.removeAttribute("data-drawn"); }
    });
  }

  // A confirmation before a form whose button says data-confirm (erase, stop, delete): also works with htmx.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
