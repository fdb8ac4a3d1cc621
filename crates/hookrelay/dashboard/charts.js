// Time-series charts of `GET /api/v1/stats` answers, drawn with the vendored uPlot
// (vendor/uplot, MIT): deliveries by outcome, emit→delivery latency, success rate, queue depth.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { h } from "./dom.js";

/** A CSS custom property of the current theme (light or dark follow the system). */
function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Columns uPlot wants: x (Unix seconds) then one array per series; null is a gap. */
export function columns(stats, pick) {
  const xs = stats.points.map((p) => Math.floor(Date.parse(p.at) / 1000));
  return [xs, ...pick.map((f) => stats.points.map(f))];
}

/** "per minute", "per 10 min", "per hour" for a step. */
export function stepLabel(stepSeconds) {
  if (stepSeconds === 60) return "per minute";
  if (stepSeconds === 3600) return "per hour";
  return `per ${Math.round(stepSeconds / 60)} min`;
}

/** Milliseconds as the axis shows them: 850 ms, 1.2 s, 3 min. */
export function msLabel(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function axes(yValues) {
  const grid = { stroke: cssVar("--border", "#d9dde3"), width: 1 };
  const stroke = cssVar("--muted", "#586170");
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, values: yValues, size: 64 },
  ];
}

/**
 * A chart in a card: `spec.series` are `{label, color (CSS var), value (point → number|null),
 * bars?}`. Returns `{el, update(stats), destroy()}`; it follows its container's width.
 */
export function chartCard({ id, title, note, series, yValues, describe, yMax }) {
  const canvasBox = h("div", { class: "chart-canvas" });
  const summary = h("p", { class: "visually-hidden", "aria-live": "polite" });
  const noteEl = h("span", { class: "muted small" }, note || "");
  const el = h(
    "section",
    { class: "card chart-card", id, "aria-label": title },
    h("div", { class: "chart-head" }, h("h2", {}, title), noteEl),
    h("div", { role: "img", "aria-label": title }, canvasBox),
    summary,
  );
  let plot = null;
  let last = null;
  const width = () => Math.max(240, Math.floor(canvasBox.clientWidth || el.clientWidth || 600));
  const bars = uPlot.paths.bars({ size: [0.7, 40], align: 0 });
  // A lone value between gaps draws no line: mark every value while a series has few.
  const sparse = (u, seriesIdx) => u.data[seriesIdx].filter((v) => v !== null && v !== undefined).length < 20;
  const build = (stats) => {
    const opts = {
      width: width(),
      height: 220,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, yMax || Math.max(1, max * 1.1)] } },
      axes: axes(yValues),
      series: [
        {},
        ...series.map((s) => {
          const color = cssVar(s.color, "#1f4fd1");
          return s.bars
            ? { label: s.label, stroke: color, fill: color, paths: bars, points: { show: false } }
            : { label: s.label, stroke: color, width: 2, spanGaps: false, points: { size: 6, fill: color, show: sparse } };
        }),
      ],
    };
    plot = new uPlot(opts, columns(stats, series.map((s) => s.value)), canvasBox);
  };
  const resize = new ResizeObserver(() => {
    if (plot) plot.setSize({ width: width(), height: 220 });
  });
  resize.observe(el);
  // The colours are read from the theme when the chart is built: a switch of the system's
  // light/dark preference builds it again.
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const rebuild = () => {
    if (!plot || !last) return;
    plot.destroy();
    build(last);
  };
  scheme.addEventListener("change", rebuild);
  return {
    el,
    update(stats, newNote) {
      last = stats;
      if (newNote !== undefined) noteEl.textContent = newNote;
      summary.textContent = describe ? describe(stats) : "";
      if (!plot) build(stats);
      else plot.setData(columns(stats, series.map((s) => s.value)));
      el.dataset.points = String(stats.points.length);
      el.dataset.total = String(series.reduce((n, s) => n + stats.points.reduce((m, p) => m + (s.value(p) || 0), 0), 0));
    },
    destroy() {
      resize.disconnect();
      scheme.removeEventListener("change", rebuild);
      if (plot) plot.destroy();
      plot = null;
      return last;
    },
  };
}

/** Deliveries by outcome per step: succeeded, retried, exhausted (bars side by side). */
export function outcomesChart(id = "chart-outcomes") {
  return chartCard({
    id,
    title: "Deliveries by outcome",
    series: [
      // Zero is no bar (null), not a hairline along the axis.
      { label: "succeeded", color: "--ok", value: (p) => p.succeeded || null, bars: true },
      { label: "retried", color: "--pending", value: (p) => p.retried || null, bars: true },
      { label: "failed (DLQ)", color: "--fail", value: (p) => p.failed || null, bars: true },
    ],
    yValues: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : "")),
    describe: (s) => `${s.totals.succeeded} succeeded, ${s.totals.retried} retried and ${s.totals.failed} failed over the last ${s.range}.`,
  });
}

/** Emit→delivery latency p50 and p95 per step. */
export function latencyChart(id = "chart-latency") {
  return chartCard({
    id,
    title: "Emit → delivery latency",
    series: [
      { label: "p50", color: "--accent", value: (p) => p.latency_p50_ms },
      { label: "p95", color: "--fail", value: (p) => p.latency_p95_ms },
    ],
    yValues: (u, vals) => vals.map((v) => msLabel(v)),
    describe: (s) => `Over the last ${s.range}: p50 ${msLabel(s.totals.latency_p50_ms)}, p95 ${msLabel(s.totals.latency_p95_ms)}.`,
  });
}

/** Successful attempts / attempts per step, in percent (a gap where nothing was attempted). */
export function successChart(id = "chart-success") {
  return chartCard({
    id,
    title: "Attempt success rate",
    series: [{ label: "success", color: "--ok", value: (p) => (p.success_rate === null || p.success_rate === undefined ? null : Math.round(p.success_rate * 1000) / 10) }],
    yMax: 100,
    yValues: (u, vals) => vals.map((v) => `${v} %`),
    describe: (s) => (s.totals.success_rate === null ? `No attempts over the last ${s.range}.` : `${Math.round(s.totals.success_rate * 1000) / 10} % of attempts succeeded over the last ${s.range}.`),
  });
}

/** The tenant's pending deliveries per step (the alert loop's samples). */
export function queueChart(id = "chart-queue") {
  return chartCard({
    id,
    title: "Queue depth",
    series: [{ label: "pending", color: "--pending", value: (p) => p.pending }],
    yValues: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v.toLocaleString() : "")),
    describe: (s) => `${s.queue.pending} deliveries pending now; the most pending in one step of the last ${s.range} was ${Math.max(0, ...s.points.map((p) => p.pending || 0))}.`,
  });
}
