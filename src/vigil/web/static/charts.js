// Vigil's charts (Chart.js from npm, in static/vendor): the alert frequency as stacked bars,
// and one incident's metric with its thresholds. Colours come from the stylesheet, so they
// follow the light or dark scheme; every chart also has a table of its numbers on the page.
(function () {
  "use strict";

  function color(name) {
    return getComputedStyle(document.body).getPropertyValue(name).trim() || "#888";
  }

  const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  function readJson(scope, id) {
    const element = scope.querySelector("#" + id);
    if (!element) return null;
    try {
      return JSON.parse(element.textContent);
    } catch (error) {
      return null;
    }
  }

  function unavailable(canvas) {
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = "The chart library is missing (run `make`); the table below has the numbers.";
    canvas.replaceWith(note);
  }

  function axes(grid, text) {
    return { ticks: { color: text }, grid: { color: grid }, border: { color: grid } };
  }

  function frequency(scope) {
    const canvas = scope.querySelector("#frequency-chart");
    const days = readJson(scope, "frequency-data");
    if (!canvas || !days) return null;
    if (!window.Chart) return unavailable(canvas);
    const grid = color("--grid");
    const text = color("--muted");
    const series = [
      ["Critical", "critical", "--critical"],
      ["Warning", "warning", "--warning"],
      ["Info", "info", "--info"],
    ];
    const x = axes(grid, text);
    x.stacked = true;
    const y = axes(grid, text);
    Object.assign(y, { stacked: true, beginAtZero: true });
    y.ticks.precision = 0;
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: days.map((day) => dayFormat.format(new Date(day.day + "T00:00:00Z"))),
        datasets: series.map(([label, key, variable]) => ({
          label: label,
          data: days.map((day) => day[key]),
          backgroundColor: color(variable),
          borderColor: color("--surface"),
          borderWidth: 1,
          stack: "incidents",
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: x, y: y },
        plugins: { legend: { labels: { color: text } } },
      },
    });
  }

  // Incidents' time shaded behind the lines: a small plugin, no annotation package.
  const incidentWindow = {
    id: "incidentWindow",
    beforeDatasetsDraw(chart, args, options) {
      const scale = chart.scales.x;
      const area = chart.chartArea;
      if (!scale || !options.windows) return;
      const context = chart.ctx;
      context.save();
      context.fillStyle = options.color;
      for (const span of options.windows) {
        const left = Math.max(area.left, scale.getPixelForValue(span.from));
        const right = Math.min(area.right, scale.getPixelForValue(span.to));
        if (right > left) context.fillRect(left, area.top, right - left, area.bottom - area.top);
      }
      context.restore();
    },
  };

  // An anomaly rule's band: steps (each holds until the next, the last until the chart's
  // end) of its low and high edges, the range between them shaded, and its baseline dashed.
  // A step without edges (too little history to judge) leaves a gap.
  function bandDatasets(steps, end) {
    function line(key) {
      const points = steps.map((step) => ({ x: Date.parse(step.t), y: step[key] }));
      points.push({ x: end, y: steps[steps.length - 1][key] });
      return points;
    }
    const edge = color("--band-edge");
    const common = { pointRadius: 0, borderWidth: 1, stepped: "after", borderColor: edge };
    return [
      Object.assign({ label: "Usual range: low", data: line("low") }, common),
      Object.assign({ label: "Usual range: high", data: line("high"), fill: "-1", backgroundColor: color("--band") }, common),
      Object.assign({ label: "Usual (baseline)", data: line("baseline"), borderDash: [3, 3] }, common),
    ];
  }

  // A metric's readings over [data.start, data.end], flat threshold lines, an anomaly rule's
  // band (data.band) and shaded windows.
  function lineChart(canvas, data, lines, windows) {
    if (!window.Chart) return unavailable(canvas);
    const start = Date.parse(data.start);
    const end = Date.parse(data.end);
    const unit = data.unit ? " " + data.unit : "";
    const grid = color("--grid");
    const text = color("--muted");
    const datasets = [
      {
        label: data.label + " (mean)",
        data: data.points.map((point) => ({ x: Date.parse(point.t), y: point.mean })),
        borderColor: color("--accent"),
        backgroundColor: color("--accent"),
        pointRadius: data.points.length > 60 ? 0 : 2,
        borderWidth: 2,
      },
    ];
    if (data.band && data.band.length) datasets.push(...bandDatasets(data.band, end));
    for (const line of lines) {
      datasets.push({
        label: line.label,
        data: [{ x: start, y: line.value }, { x: end, y: line.value }],
        borderColor: color(line.color),
        borderDash: line.dash,
        pointRadius: 0,
        borderWidth: line.width || 2,
      });
    }
    const x = axes(grid, text);
    Object.assign(x, { type: "linear", min: start, max: end });
    // Ticks on whole minutes or hours: the smallest step that gives at most seven.
    const minutes = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080];
    const span = (end - start) / 60000;
    const step = minutes.find((size) => span / size <= 7) || minutes[minutes.length - 1];
    Object.assign(x.ticks, { stepSize: step * 60000, includeBounds: false });
    x.ticks.callback = (value) => (span > 2880 ? dayFormat : timeFormat).format(value);
    const y = axes(grid, text);
    y.ticks.callback = (value) => value + unit;
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: { x: x, y: y },
        plugins: {
          legend: { labels: { color: text } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? fullFormat.format(items[0].parsed.x) : ""),
              label: (item) => item.dataset.label + ": " + item.parsed.y + unit,
            },
          },
          incidentWindow: {
            windows: windows.map((span) => ({ from: Date.parse(span.from), to: Date.parse(span.to) })),
            color: color("--window"),
          },
        },
      },
      plugins: [incidentWindow],
    });
  }

  function incident(scope) {
    const canvas = scope.querySelector("#incident-chart");
    const data = readJson(scope, "incident-chart-data");
    if (!canvas || !data) return null;
    const limits = data.thresholds;
    const lines = [];
    if (limits.warning != null) {
      lines.push({ label: "Warning threshold", value: limits.warning, color: "--warning", dash: [8, 4] });
    }
    if (limits.critical != null) {
      lines.push({ label: "Critical threshold", value: limits.critical, color: "--critical", dash: [2, 3] });
    }
    if (limits.at_trigger != null && limits.at_trigger !== limits.warning && limits.at_trigger !== limits.critical) {
      lines.push({ label: "Threshold when it triggered", value: limits.at_trigger, color: "--muted", dash: [4, 4], width: 1 });
    }
    const window_ = { from: data.triggered_at, to: data.resolved_at || data.end };
    return lineChart(canvas, data, lines, [window_]);
  }

  // A rule's preview: both versions' thresholds (this one solid, the saved one dashed) and
  // the incidents this version would have opened.
  function preview(scope) {
    const canvas = scope.querySelector("#preview-chart");
    const data = readJson(scope, "preview-chart-data");
    if (!canvas || !data) return null;
    const lines = data.thresholds.map((line) => ({
      label: line.label,
      value: line.value,
      color: "--" + line.level,
      dash: line.style === "dashed" ? [6, 4] : [],
      width: line.style === "dashed" ? 1.5 : 2,
    }));
    return lineChart(canvas, data, lines, data.windows);
  }

  function destroyIn(scope) {
    if (!window.Chart) return;
    scope.querySelectorAll("canvas").forEach((canvas) => {
      const chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  }

  function drawIn(scope) {
    frequency(scope);
    incident(scope);
    preview(scope);
  }

  window.VigilCharts = { drawIn: drawIn, destroyIn: destroyIn };
})();
