// The overview, the dashboard's landing page: deliveries by outcome, success rate, emit→delivery
// latency, the queue and the dead-letter queue, and the webhooks in trouble first, over 1 h, 24 h
// or 7 d, refreshed while it is open (`GET /api/v1/stats`).

import { get } from "../api.js";
import { latencyChart, msLabel, outcomesChart, queueChart, stepLabel, successChart } from "../charts.js";
import { duration, emptyState, errorBox, fill, h, link, loading, table } from "../dom.js";

export const RANGES = [
  ["1h", "1 hour"],
  ["24h", "24 hours"],
  ["7d", "7 days"],
];

/** How often the page asks again while open; a delivery on the live stream asks sooner. */
const REFRESH_MS = 10_000;
const SOON_MS = 1_500;

/** `0.9876` → "98.8 %", `1` → "100 %", null → "—". */
export function percent(rate) {
  if (rate === null || rate === undefined) return "—";
  const p = rate * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)} %`;
}

function statCard(id, label, value, cls, href) {
  const valueEl = h("p", { class: "stat-value", id }, value);
  const body = [valueEl, h("p", { class: "stat-label" }, label)];
  return href ? h("a", { class: ["stat", "stat-link", cls], href }, body) : h("div", { class: ["stat", cls] }, body);
}

const HEALTH_TEXT = {
  disabled: "disabled",
  circuit_open: "circuit open",
  half_open: "circuit half-open",
  failing: "failing",
  paused: "paused",
  healthy: "healthy",
};

/** The health badge the webhooks list uses, from the stats' `health`. */
function healthBadge(w) {
  const kind = { circuit_open: "open", half_open: "open" }[w.health] || w.health;
  const text = w.health === "disabled" && w.disabled_reason ? `disabled: ${w.disabled_reason}` : HEALTH_TEXT[w.health] || w.health;
  return h("span", { class: `badge badge-health badge-health-${kind}`, "data-health": w.health }, text);
}

/** The range picker: buttons that act like radio buttons, kept in the address. */
export function rangePicker(current, onPick, idPrefix = "range") {
  const group = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Time range" });
  for (const [value, text] of RANGES) {
    const b = h("button", { type: "button", role: "radio", id: `${idPrefix}-${value}`, "aria-checked": String(value === current), tabindex: value === current ? 0 : -1, "data-range": value }, text);
    b.addEventListener("click", () => onPick(value));
    b.addEventListener("keydown", (e) => {
      const i = RANGES.findIndex(([v]) => v === value);
      const step = e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : e.key === "ArrowLeft" || e.key === "ArrowUp" ? -1 : 0;
      if (!step) return;
      e.preventDefault();
      const next = RANGES[(i + step + RANGES.length) % RANGES.length][0];
      onPick(next);
      requestAnimationFrame(() => document.getElementById(`${idPrefix}-${next}`)?.focus());
    });
    group.append(b);
  }
  return group;
}

/** Marks the picked range without rebuilding the picker. */
function markRange(group, range) {
  for (const b of group.querySelectorAll("button")) {
    const on = b.dataset.range === range;
    b.setAttribute("aria-checked", String(on));
    b.tabIndex = on ? 0 : -1;
  }
}

/**
 * Charts of one tenant's or webhook's stats that refresh themselves: `{el, load(range),
 * destroy()}`; `onStats` gets each answer (for cards beside the charts).
 */
export function liveCharts(ctx, { webhookId = null, idPrefix = "chart", onStats = () => {}, onError = () => {} } = {}) {
  const outcomes = outcomesChart(`${idPrefix}-outcomes`);
  const latency = latencyChart(`${idPrefix}-latency`);
  const success = successChart(`${idPrefix}-success`);
  // Queue samples are the tenant's: one webhook's page has no queue chart.
  const queue = webhookId ? null : queueChart(`${idPrefix}-queue`);
  const all = [outcomes, latency, success, queue].filter(Boolean);
  const el = h("div", { class: "charts" }, all.map((c) => c.el));
  let range = "1h";
  let timer = null;
  let soon = null;
  let stopped = false;
  let inFlight = false;
  const load = async (next = range) => {
    range = next;
    if (stopped || inFlight) return;
    inFlight = true;
    clearTimeout(timer);
    try {
      const query = { range };
      if (webhookId) query.webhook_id = webhookId;
      const stats = await get("/api/v1/stats", query);
      if (stopped) return;
      const step = stepLabel(stats.step_seconds);
      outcomes.update(stats, `${step}, last ${RANGES.find(([v]) => v === stats.range)[1]}`);
      latency.update(stats, `p50 and p95 ${step}`);
      success.update(stats, step);
      if (queue) queue.update(stats, `most pending ${step}`);
      el.dataset.updated = stats.until;
      onStats(stats);
    } catch (err) {
      if (!stopped) onError(err);
    } finally {
      inFlight = false;
      if (!stopped) timer = setTimeout(() => load(), REFRESH_MS);
    }
  };
  const offDelivery = ctx.stream.on("delivery", () => {
    if (soon || stopped) return;
    soon = setTimeout(() => {
      soon = null;
      load();
    }, SOON_MS);
  });
  const offResync = ctx.stream.on("resync", () => load());
  return {
    el,
    load,
    destroy() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(soon);
      offDelivery();
      offResync();
      for (const c of all) c.destroy();
    },
  };
}

export function page(root, route, ctx) {
  ctx.title("Overview");
  let range = RANGES.some(([v]) => v === route.query.range) ? route.query.range : "1h";
  const picker = rangePicker(range, (next) => {
    range = next;
    markRange(picker, range);
    // Kept in the address so a reload or a shared link opens the same range.
    history.replaceState(null, "", ctx.href("overview", { range: next === "1h" ? "" : next }));
    charts.load(range);
  });
  const cards = h("div", { class: "stats", id: "overview-cards" }, loading("Loading the overview…"));
  const problem = h("div", { id: "overview-error" });
  const hooks = h("div", { id: "overview-webhooks" });
  const charts = liveCharts(ctx, {
    idPrefix: "overview",
    onStats: (s) => {
      fill(problem);
      renderCards(s);
      renderWebhooks(s);
    },
    onError: (err) => fill(problem, errorBox(err, "Could not load the overview")),
  });

  const renderCards = (s) => {
    const t = s.totals;
    const failed = t.failed + t.retried;
    fill(cards,
      statCard("stat-succeeded", `deliveries succeeded · ${s.range}`, t.succeeded.toLocaleString(), "stat-ok"),
      statCard("stat-success-rate", "attempt success rate", percent(t.success_rate), t.success_rate !== null && t.success_rate < 0.95 ? "stat-bad" : null),
      statCard("stat-failed", "failed attempts", failed.toLocaleString(), failed ? "stat-bad" : null),
      statCard("stat-latency", "latency p50 · p95", `${msLabel(t.latency_p50_ms)} · ${msLabel(t.latency_p95_ms)}`),
      statCard("stat-pending", "pending now", s.queue.pending.toLocaleString(), null, ctx.href("deliveries", { status: "pending" })),
      statCard("stat-oldest", "oldest pending", s.queue.pending ? duration(s.queue.oldest_pending_age_seconds) : "—", s.queue.oldest_pending_age_seconds > 900 ? "stat-bad" : null),
      statCard("stat-dlq", "in the dead-letter queue", s.queue.dead_letter.toLocaleString(), s.queue.dead_letter ? "stat-bad" : null, "#/dlq"),
    );
  };

  const renderWebhooks = (s) => {
    if (!s.webhooks.length) {
      fill(hooks, emptyState("No webhooks yet", "Deliveries appear here once a webhook receives events.", ctx.canWrite ? h("a", { class: "btn btn-primary", href: "#/webhooks/new" }, "New webhook") : null));
      return;
    }
    fill(hooks,
      table(
        "Webhooks, those in trouble first",
        [{ text: "Webhook", class: "col-url" }, "Health", { text: "Attempts", class: "num" }, { text: "Failed", class: "num" }, { text: "Success rate", class: "num" }, { text: "p95 latency", class: "num" }],
        s.webhooks.map((w) =>
          h(
            "tr",
            { "data-id": w.webhook_id, "data-health": w.health },
            h("td", { class: "col-url" }, link(["webhooks", w.webhook_id], w.url, { class: "url strong" }), w.description ? h("div", { class: "muted small" }, w.description) : null),
            h("td", {}, healthBadge(w)),
            h("td", { class: "num" }, w.attempts.toLocaleString()),
            h("td", { class: "num" }, (w.retried + w.failed).toLocaleString()),
            h("td", { class: "num" }, percent(w.success_rate)),
            h("td", { class: "num" }, msLabel(w.latency_p95_ms)),
          ),
        ),
      ).el,
    );
  };

  root.append(
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Overview"), h("p", { class: "muted" }, "How deliveries are going, updated while you watch.")),
      h("div", { class: "page-actions" }, picker),
    ),
    problem,
    cards,
    charts.el,
    h("section", { class: "section", "aria-labelledby": "overview-webhooks-title" }, h("div", { class: "section-head" }, h("h2", { id: "overview-webhooks-title" }, "Webhooks")), hooks),
  );
  charts.load(range);
  return () => charts.destroy();
}
