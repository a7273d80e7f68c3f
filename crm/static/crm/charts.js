// Draws every chart on the page from the JSON that crm/charts.py's chart_spec() built.
// Markup: admin/includes/chart.html (a <canvas data-chart="ID"> and a json_script ID).
(function () {
  "use strict";

  function format(value, unit) {
    if (value === null || value === undefined) {
      return "";
    }
    var text = Number(value).toLocaleString(document.documentElement.lang || undefined, {
      maximumFractionDigits: 1,
    });
    if (!unit) {
      return text;
    }
    return unit === "%" ? text + "%" : text + " " + unit;
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || !window.Chart) {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var valueAxis = spec.horizontal ? "x" : "y";
    var scales = {};
    if (spec.kind !== "doughnut") {
      scales[valueAxis] = {
        beginAtZero: true,
        stacked: spec.stacked,
        ticks: {
          callback: function (value) {
            return format(value, spec.unit);
          },
        },
      };
      scales[valueAxis === "x" ? "y" : "x"] = { stacked: spec.stacked };
    }
    new window.Chart(canvas, {
      type: spec.kind,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: scales,
        plugins: {
          legend: { display: spec.datasets.length > 1 || spec.kind === "doughnut" },
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = context.parsed && typeof context.parsed === "object"
                  ? context.parsed[valueAxis]
                  : context.parsed;
                return (context.dataset.label ? context.dataset.label + ": " : "") +
                  format(value, spec.unit);
              },
            },
          },
        },
      },
    });
    canvas.dataset.drawn = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
