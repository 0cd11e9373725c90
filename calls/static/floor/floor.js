// The floor's charts: each canvas names the JSON it draws (data-url); the vendor picker redraws
// both. The live counts are htmx's (hx-trigger on #floor-live); the charts refresh each minute.
(function () {
  "use strict";
  const CHART_REFRESH_MS = 60000;

  function options(kind) {
    if (kind === "bar") {
      return {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      };
    }
    return {
      animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
      scales: { y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: "%" } } },
    };
  }

  function draw(canvas, vendor) {
    const url = canvas.dataset.url + (vendor ? "?vendor=" + encodeURIComponent(vendor) : "");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        const existing = window.Chart.getChart(canvas);
        if (existing) {
          existing.data.labels = data.labels;
          existing.data.datasets = data.datasets;
          existing.update();
          return;
        }
        new window.Chart(canvas, { type: canvas.dataset.kind, data: data, options: options(canvas.dataset.kind) });
      });
  }

  function drawAll() {
    const picker = document.getElementById("chart-vendor");
    const vendor = picker ? picker.value : "";
    const canvases = document.querySelectorAll(".floor-chart canvas[data-url]");
    return Promise.all(Array.prototype.map.call(canvases, function (canvas) { return draw(canvas, vendor); }));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Chart) { return; }
    const picker = document.getElementById("chart-vendor");
    if (picker) { picker.addEventListener("change", drawAll); }
    drawAll();
    window.setInterval(drawAll, CHART_REFRESH_MS);
  });
})();
