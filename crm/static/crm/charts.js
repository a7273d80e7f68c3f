// Draws every chart on the page from the JSON that crm/charts.py's chart_spec() built.
// Markup: admin/includes/chart.html (a <canvas data-chart="ID"> and a json_script ID).
// Layout choices live here, once, so every page's charts read the same: bars have a
// steady thickness, long category labels wrap instead of being clipped, a horizontal
// bar chart grows tall enough for every bar to keep its label, and a long line has
// no dots.
(function () {
  "use strict";

  var BAR_THICKNESS = 22; // px, the most a bar is drawn; thin charts keep thin bars
  var BAR_ROW = 30; // px per bar in a horizontal bar chart, label included
  var LABEL_WIDTH = 16; // characters on one line of a category label
  var DOTS_UP_TO = 31; // points in a line before its dots are left out

  function locale() {
    return document.documentElement.lang || undefined;
  }

  function format(value, unit, compact) {
    if (value === null || value === undefined) {
      return "";
    }
    var options = compact
      ? { notation: "compact", maximumFractionDigits: 1 }
      : { maximumFractionDigits: 1 };
    var text = Number(value).toLocaleString(locale(), options);
    if (!unit) {
      return text;
    }
    return unit === "%" ? text + "%" : text + " " + unit;
  }

  // "Social media audiences" -> ["Social media", "audiences"]: Chart.js draws an
  // array as lines and otherwise cuts a label that is wider than its axis allows.
  function wrap(label) {
    if (label.length <= LABEL_WIDTH) {
      return label;
    }
    var lines = [];
    var line = "";
    label.split(" ").forEach(function (word) {
      if (line && (line + " " + word).length > LABEL_WIDTH) {
        lines.push(line);
        line = word;
      } else {
        line = line ? line + " " + word : word;
      }
    });
    if (line) {
      lines.push(line);
    }
    return lines;
  }

  function barDatasets(datasets) {
    return datasets.map(function (set) {
      return Object.assign(
        { maxBarThickness: BAR_THICKNESS, categoryPercentage: 0.8, barPercentage: 0.9 },
        set
      );
    });
  }

  function lineDatasets(datasets, points) {
    return datasets.map(function (set) {
      return Object.assign(
        {
          pointRadius: points > DOTS_UP_TO ? 0 : 3,
          pointHoverRadius: 4,
          pointHitRadius: 8,
          borderWidth: 2,
          spanGaps: false,
        },
        set
      );
    });
  }

  function fitHeight(canvas, spec) {
    // A horizontal bar chart needs a row per bar (and per dataset in the row).
    var box = canvas.parentElement;
    var rows = spec.labels.length * (spec.stacked ? 1 : Math.max(spec.datasets.length, 1));
    var legend = spec.datasets.length > 1 ? 28 : 0;
    var needed = rows * BAR_ROW + legend + 36;
    if (box && box.clientHeight < needed) {
      box.style.height = needed + "px";
    }
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || !window.Chart) {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var valueAxis = spec.horizontal ? "x" : "y";
    var categoryAxis = valueAxis === "x" ? "y" : "x";
    var scales = {};
    var datasets = spec.datasets;
    if (spec.kind === "bar") {
      datasets = barDatasets(datasets);
      if (spec.horizontal) {
        fitHeight(canvas, spec);
      }
    } else if (spec.kind === "line") {
      datasets = lineDatasets(datasets, spec.labels.length);
    }
    if (spec.kind !== "doughnut") {
      // A currency is said once, as the axis title, so that the ticks stay short
      // enough to sit side by side on a narrow card.
      var unitInTitle = spec.unit && spec.unit !== "%";
      scales[valueAxis] = {
        beginAtZero: true,
        stacked: spec.stacked,
        max: spec.value_max == null ? undefined : spec.value_max,
        grace: spec.value_max == null ? "5%" : 0,
        title: { display: Boolean(unitInTitle), text: spec.unit },
        ticks: {
          maxTicksLimit: spec.horizontal ? 5 : 6,
          maxRotation: 0,
          callback: function (value) {
            return format(value, unitInTitle ? "" : spec.unit, true);
          },
        },
      };
      scales[categoryAxis] = {
        stacked: spec.stacked,
        grid: { display: spec.kind === "line" },
        ticks: {
          autoSkip: !(spec.kind === "bar" && spec.horizontal),
          autoSkipPadding: 12,
          maxRotation: spec.kind === "line" ? 0 : 45,
          callback: function (value) {
            var label = this.getLabelForValue(value);
            return spec.kind === "bar" ? wrap(String(label)) : label;
          },
        },
      };
    }
    new window.Chart(canvas, {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: spec.kind === "doughnut"
          ? undefined
          : { mode: "nearest", axis: categoryAxis, intersect: false },
        scales: scales,
        plugins: {
          legend: {
            display: spec.datasets.length > 1 || spec.kind === "doughnut",
            position: "bottom",
            labels: { boxWidth: 12, boxHeight: 12 },
          },
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = context.parsed && typeof context.parsed === "object"
                  ? context.parsed[valueAxis]
                  : context.parsed;
                return (context.dataset.label ? context.dataset.label + ": " : "") +
                  format(value, spec.unit, false);
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
