// Deliveries: the filtered list (live: new rows at the top, status changes in place) and one
// delivery with its payload, every attempt and the Retry button.

import { get, getExact, post } from "../api.js";
import { download, toCsv } from "../csv.js";
import { badge, clear, copyButton, emptyState, errorBox, fields, fill, h, httpStatus, jsonText, jsonView, link, loading, mono, table, timeEl, morePager } from "../dom.js";
import { matchesFilters } from "../stream.js";
import { clearFieldErrors, showFieldErrors } from "./forms.js";

export const STATUSES = ["pending", "succeeded", "failed", "cancelled"];

/** `<select>` of the tenant's webhooks, labelled by URL. */
export function webhookSelect(ctx, id, selected) {
  const select = h("select", { id, name: "webhook_id" }, h("option", { value: "" }, "Any webhook"));
  const fill = () => {
    const hooks = [...ctx.webhooks.map.values()].sort((a, b) => a.url.localeCompare(b.url));
    for (const w of hooks) {
      select.append(h("option", { value: w.id, selected: w.id === selected }, `${w.url}${w.active ? "" : " (paused)"}`));
    }
    if (selected && !ctx.webhooks.get(selected)) select.append(h("option", { value: selected, selected: true }, selected));
  };
  ctx.webhooks.load().then(fill, () => fill());
  return select;
}

/** A search input for an event type, suggesting the tenant's catalog (`GET /api/v1/event-types`). */
export function eventTypeInput(ctx, id, name, value) {
  const listId = `${id}-types`;
  const input = h("input", { id, name, type: "search", value, placeholder: "member.created", spellcheck: "false", autocomplete: "off", list: listId });
  const datalist = h("datalist", { id: listId });
  ctx.eventTypes().then((names) => names.forEach((n) => datalist.append(h("option", { value: n }))), () => {});
  return [input, datalist];
}

/** A link to a webhook, labelled by its URL (an unknown id stays an id). */
export function webhookLink(ctx, id) {
  const w = ctx.webhooks.get(id);
  if (!w && ctx.webhooks.loadedAt) {
    // The tenant's webhooks are loaded and this one is not among them: it was deleted.
    return h("span", { class: "muted url", title: id }, `deleted webhook ${id}`);
  }
  const title = w ? [w.description, id].filter(Boolean).join(" · ") : id;
  return link(["webhooks", id], w ? w.url : id, { class: "url", title });
}

/** The last error, shortened in lists (the full text is in the title and on the detail page). */
export function errorSnippet(text) {
  if (!text) return null;
  return h("span", { class: "error-snippet", title: text }, text);
}

/** Merges a stream `delivery` change into a row: a recorded attempt sends only what changed. */
export function mergeDelivery(row, change) {
  const { created_at, ...rest } = change;
  Object.assign(row, rest);
  if (created_at) row.created_at = created_at;
  return row;
}

// ---- Time range and search --------------------------------------------------------------

/** The time-range presets: the hash keeps the name, so a reload counts back from its own now. */
export const RANGES = [
  ["", "Any time"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["custom", "Custom range…"],
];
const RANGE_MS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 };

/**
 * The `since`/`until` (RFC 3339, or "") a route's query asks for: a preset counted back from
 * `now`, or a custom range's own bounds.
 */
export function rangeBounds(query, now = Date.now()) {
  const range = query.range || "";
  if (RANGE_MS[range]) return { since: new Date(now - RANGE_MS[range]).toISOString(), until: "" };
  if (range === "custom") return { since: query.since || "", until: query.until || "" };
  return { since: "", until: "" };
}

const pad = (n) => String(n).padStart(2, "0");

/** An RFC 3339 time as a `datetime-local` value in the viewer's time zone (to the second). */
export function toLocalInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A `datetime-local` value (local time, no zone) as RFC 3339 UTC; "" stays "", junk is null. */
export function fromLocalInput(value) {
  if (!value) return "";
  // Without an offset, Date reads a date-time as local time: what the person typed.
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * What a search box's text asks for: `{event_id}` or `{delivery_id}` for an id (whitespace and
 * surrounding quotes dropped, as pasted from a log), `{}` for nothing, `{error}` otherwise.
 */
export function parseSearch(text) {
  const q = String(text || "").trim().replace(/^["'`]+|["'`]+$/g, "");
  if (!q) return {};
  if (/^evt_[0-9A-Za-z]+$/.test(q)) return { event_id: q };
  if (/^dlv_[0-9A-Za-z]+$/.test(q)) return { delivery_id: q };
  return { error: "Enter an event id (evt_…) or a delivery id (dlv_…)." };
}

/** The deliveries list's filters from the route's query. */
export function listFilters(query) {
  return {
    status: query.status || "",
    event_type: query.event_type || "",
    webhook_id: query.webhook_id || "",
    event_id: query.event_id || "",
    delivery_id: query.delivery_id || "",
    range: query.range || "",
    since: query.range === "custom" ? query.since || "" : "",
    until: query.range === "custom" ? query.until || "" : "",
  };
}

/** The API query for `filters`, with a preset range resolved against `now`. */
export function apiQuery(filters, now = Date.now()) {
  const { range, since, until, ...rest } = filters;
  return { ...rest, ...rangeBounds({ range, since, until }, now) };
}

/** The API's 422 `details` name query parameters; these are the form fields that show them. */
const FIELD_OF_PARAM = { event_id: "search", delivery_id: "search", since: "since", until: "until", status: "status", webhook_id: "webhook_id", event_type: "event_type" };

function filterForm(ctx, filters) {
  const status = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
  );
  const [type, typeList] = eventTypeInput(ctx, "f-type", "event_type", filters.event_type);
  const hook = webhookSelect(ctx, "f-webhook", filters.webhook_id);
  const range = h("select", { id: "f-range", name: "range" }, RANGES.map(([v, t]) => h("option", { value: v, selected: v === filters.range }, t)));
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", step: 1, value: toLocalInput(filters.since), "aria-describedby": "f-range-zone" });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", step: 1, value: toLocalInput(filters.until), "aria-describedby": "f-range-zone" });
  const search = h("input", {
    id: "f-search",
    name: "search",
    type: "search",
    value: filters.event_id || filters.delivery_id,
    placeholder: "evt_… or dlv_…",
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "f-search-hint",
  });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const custom = h(
    "div",
    { class: "range-custom", hidden: filters.range !== "custom" },
    h("div", { class: "form-field", "data-field": "since" }, h("label", { for: "f-since" }, "From"), since),
    h("div", { class: "form-field", "data-field": "until" }, h("label", { for: "f-until" }, "To"), until),
    h("p", { class: "hint", id: "f-range-zone" }, `Times in ${zone}; either may be left empty.`),
  );
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter deliveries", novalidate: true },
    h("div", { class: "form-field", "data-field": "status" }, h("label", { for: "f-status" }, "Status"), status),
    h("div", { class: "form-field", "data-field": "event_type" }, h("label", { for: "f-type" }, "Event type"), type, typeList),
    h("div", { class: "form-field grow", "data-field": "webhook_id" }, h("label", { for: "f-webhook" }, "Webhook"), hook),
    h("div", { class: "form-field", "data-field": "range" }, h("label", { for: "f-range" }, "Time"), range),
    custom,
    h(
      "div",
      { class: "form-field grow", "data-field": "search" },
      h("label", { for: "f-search" }, "Find by id"),
      search,
      h("p", { class: "hint visually-hidden", id: "f-search-hint" }, "An event id lists its deliveries; a delivery id opens it."),
    ),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Apply"),
      h("a", { class: "btn", href: "#/deliveries" }, "Clear"),
    ),
  );
  // Choosing from a select applies at once; typing (a type, an id, a time) waits for Enter or
  // Apply. "Custom range…" only opens the two inputs.
  const apply = (e) => {
    if (e) e.preventDefault();
    clearFieldErrors(form);
    const found = parseSearch(search.value);
    if (found.error) return showFieldErrors(form, { details: [{ field: "search", message: found.error }] });
    if (found.delivery_id) {
      ctx.navigate(`deliveries/${encodeURIComponent(found.delivery_id)}`);
      return;
    }
    const query = { status: status.value, event_type: type.value.trim(), webhook_id: hook.value, event_id: found.event_id, range: range.value };
    if (range.value === "custom") {
      const from = fromLocalInput(since.value);
      const to = fromLocalInput(until.value);
      const errors = [];
      if (from === null) errors.push({ field: "since", message: "is not a date and time" });
      if (to === null) errors.push({ field: "until", message: "is not a date and time" });
      if (from && to && to < from) errors.push({ field: "until", message: "must not be before From" });
      if (errors.length) return showFieldErrors(form, { details: errors });
      Object.assign(query, { since: from, until: to });
    }
    ctx.navigate("deliveries", query);
  };
  form.addEventListener("submit", apply);
  status.addEventListener("change", () => apply());
  hook.addEventListener("change", () => apply());
  range.addEventListener("change", () => {
    if (range.value === "custom") {
      custom.hidden = false;
      since.focus();
    } else apply();
  });
  /** Shows a 422 from the list call beside the fields its details name. */
  form.showApiError = (err) =>
    showFieldErrors(form, { details: (err.details || []).map((d) => ({ ...d, field: FIELD_OF_PARAM[d.field] || d.field })) });
  return form;
}

/** The columns of the CSV export, in order: the list's fields. */
export const CSV_COLUMNS = ["id", "event_id", "event_type", "webhook_id", "status", "attempts", "last_response_status", "last_error", "created_at", "delivered_at"];
/** Rows an export takes at most: beyond that, narrow the filters. */
export const EXPORT_CAP = 10_000;

/**
 * Every delivery matching `query`, following `next_cursor` 1,000 at a time, up to `cap`;
 * `onProgress(n)` after each page. Answers `{rows, truncated}`.
 */
export async function fetchAll(query, { cap = EXPORT_CAP, onProgress = () => {}, fetchPage = (q) => get("/api/v1/deliveries", q) } = {}) {
  const rows = [];
  let cursor;
  for (;;) {
    const page = await fetchPage({ ...query, limit: Math.min(1000, cap - rows.length), cursor });
    rows.push(...page.data);
    onProgress(rows.length);
    cursor = page.next_cursor;
    if (!cursor) return { rows, truncated: false };
    if (rows.length >= cap) return { rows, truncated: true };
  }
}

function exportName(now = new Date()) {
  const d = now;
  return `deliveries-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}.csv`;
}

/** The deliveries list. */
export function list(root, route, ctx) {
  ctx.title("Deliveries");
  const filters = listFilters(route.query);
  const filtered = Object.values(filters).some(Boolean);
  const body = h("div", {}, loading("Loading deliveries…"));
  const more = h("div", { class: "more" });
  const refresh = h("button", { type: "button", class: "btn btn-small" }, "Refresh");
  const exportBtn = h("button", { type: "button", class: "btn btn-small", id: "export-csv" }, "Export CSV");
  const exportNote = h("p", { class: "action-note", role: "status", id: "export-note" });
  const form = filterForm(ctx, filters);
  const eventNote = filters.event_id
    ? h("p", { class: "hint", id: "event-filter" }, "Deliveries of the event ", link(["events", filters.event_id], filters.event_id, { class: "mono" }), ".")
    : null;
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Deliveries"), h("p", { class: "muted" }, "Every event sent to every webhook, newest first.")),
      h("div", { class: "page-actions" }, exportBtn, refresh),
    ),
    ...[form, eventNote, exportNote, body, more].filter(Boolean),
  );
  // A preset range counts back from the moment the list loads; the export uses the same bounds.
  let query = apiQuery(filters);

  const rows = new Map(); // id → {data, tr}
  let tbody = null;

  const renderRow = (d) => {
    const tr = h(
      "tr",
      { class: ["row-link", `row-${d.status}`], "data-id": d.id, "data-status": d.status },
      h("td", { class: "nowrap" }, timeEl(d.created_at)),
      h("td", {}, link(["deliveries", d.id], d.event_type, { class: "strong" })),
      h("td", { class: "col-url" }, webhookLink(ctx, d.webhook_id)),
      h("td", {}, badge(d.status)),
      h("td", { class: "num" }, String(d.attempts)),
      h("td", { class: "col-response" }, httpStatus(d.last_response_status), d.last_error ? [" ", errorSnippet(d.last_error)] : null),
      h("td", { class: "nowrap opt" }, d.status === "pending" ? timeEl(d.next_attempt_at) : h("span", { class: "muted" }, "—")),
    );
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a, button")) return;
      ctx.navigate(`deliveries/${encodeURIComponent(d.id)}`);
    });
    return tr;
  };

  const upsert = (d, { prepend = false, fresh = false } = {}) => {
    const existing = rows.get(d.id);
    if (existing) {
      mergeDelivery(existing.data, d);
      const tr = renderRow(existing.data);
      existing.tr.replaceWith(tr);
      existing.tr = tr;
      tr.classList.add("flash");
      return;
    }
    const tr = renderRow(d);
    rows.set(d.id, { data: d, tr });
    if (fresh) tr.classList.add("flash", "row-new");
    if (prepend) tbody.prepend(tr);
    else tbody.append(tr);
  };

  const renderTable = () => {
    const t = table(
      "Deliveries",
      ["Created", "Event type", { text: "Webhook", class: "col-url" }, "Status", { text: "Attempts", class: "num" }, "Last response", { text: "Next attempt", class: "opt" }],
      [],
    );
    tbody = t.tbody;
    fill(body, t.el);
  };

  const showEmpty = () => {
    fill(body,
      filtered
        ? emptyState("No deliveries match these filters.", "Deliveries that match will appear here as they are created.", h("a", { class: "btn", href: "#/deliveries" }, "Clear filters"))
        : emptyState("No deliveries yet.", "A delivery is created when an event matches a webhook's patterns. They appear here live.", h("a", { class: "btn", href: "#/webhooks" }, "Set up a webhook")),
    );
  };

  const pager = morePager(more, (cursor) => get("/api/v1/deliveries", { ...query, cursor, limit: 50 }), (d) => upsert(d), "deliveries");

  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      await ctx.webhooks.load().catch(() => null);
      query = apiQuery(filters);
      const page = await get("/api/v1/deliveries", { ...query, limit: 50 });
      if (mine !== generation) return;
      rows.clear();
      pager.cursor = page.next_cursor;
      if (page.data.length === 0) showEmpty();
      else {
        renderTable();
        page.data.forEach((d) => upsert(d));
      }
      pager.render();
    } catch (err) {
      if (mine !== generation) return;
      fill(body, errorBox(err, "Could not load deliveries"));
      if (err.status === 422) form.showApiError(err);
    }
  };
  refresh.addEventListener("click", load);
  load();

  exportBtn.addEventListener("click", async () => {
    exportBtn.disabled = true;
    fill(exportNote, loading("Exporting…"));
    try {
      const { rows: all, truncated } = await fetchAll(query, { onProgress: (n) => fill(exportNote, loading(`Exporting… ${n.toLocaleString()} rows`)) });
      download(exportName(), toCsv(CSV_COLUMNS, all));
      fill(
        exportNote,
        truncated
          ? `Exported the first ${EXPORT_CAP.toLocaleString()} deliveries; more match. Narrow the filters (a shorter time range) to export the rest.`
          : `Exported ${all.length.toLocaleString()} ${all.length === 1 ? "delivery" : "deliveries"}.`,
      );
    } catch (err) {
      fill(exportNote, errorBox(err, "Could not export"));
    } finally {
      exportBtn.disabled = false;
    }
  });

  const offDelivery = ctx.stream.on("delivery", async (d) => {
    if (rows.has(d.id)) {
      upsert(d);
      return;
    }
    // Only a new delivery (created_at set) can be added: an attempt carries only the changes.
    if (!d.created_at || !matchesFilters(d, query) || !body.isConnected) return;
    if (!ctx.webhooks.get(d.webhook_id)) await ctx.webhooks.load(true).catch(() => null);
    if (!tbody || !tbody.isConnected) renderTable();
    upsert({ ...d }, { prepend: true, fresh: true });
  });
  const offResync = ctx.stream.on("resync", load);
  return () => {
    offDelivery();
    offResync();
  };
}

/** Whether an attempt succeeded: a 2xx answer and no error. */
function attemptOk(a) {
  return !a.error && a.response_status >= 200 && a.response_status < 300;
}

/** A word for the shell in single quotes: `'` becomes `'\''`. */
export function shellQuote(text) {
  return `'${String(text).replace(/'/g, "'\\''")}'`;
}

/** Headers curl works out itself (a stale Content-Length would cut or hang the body). */
const CURL_SKIPS = new Set(["content-length", "host", "connection", "transfer-encoding"]);

/**
 * An attempt as a curl command: `request` ({method, url, body} of the delivery detail) with the
 * attempt's headers as sent. The API redacts signatures, so a comment says the copy will not
 * verify until it is signed again.
 */
export function curlCommand(request, attempt, deliveryId) {
  const headers = attempt.request_headers && typeof attempt.request_headers === "object" ? Object.entries(attempt.request_headers) : [];
  const redacted = headers.filter(([, v]) => typeof v === "string" && v.includes("[redacted]")).map(([k]) => k);
  const lines = [`# Attempt ${attempt.n} of ${deliveryId}, as hookrelay sent it.`];
  if (redacted.length) {
    lines.push(`# ${redacted.join(", ")}: redacted by hookrelay; a receiver that checks signatures`, "# refuses this copy unless you sign the body again with the webhook's secret.");
  }
  const parts = [`curl -X ${request.method || "POST"} ${shellQuote(request.url)}`];
  for (const [k, v] of headers) {
    if (CURL_SKIPS.has(k.toLowerCase())) continue;
    parts.push(`-H ${shellQuote(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)}`);
  }
  parts.push(`--data-raw ${shellQuote(request.body)}`);
  return `${lines.join("\n")}\n${parts.join(" \\\n  ")}\n`;
}

function attemptCard(a, open, request, deliveryId) {
  const ok = attemptOk(a);
  const headers = a.request_headers && typeof a.request_headers === "object" ? Object.entries(a.request_headers) : [];
  const curl = request ? copyButton(() => curlCommand(request, a, deliveryId), "Copy as curl") : null;
  if (curl) curl.dataset.action = "copy-curl";
  return h(
    "article",
    { class: ["attempt", ok ? "attempt-ok" : "attempt-bad"], "data-n": a.n },
    h(
      "header",
      { class: "attempt-head" },
      h("h3", {}, `Attempt ${a.n}`),
      badge(ok ? "succeeded" : "failed", ok ? "succeeded" : "failed"),
      h("span", { class: "attempt-meta" }, timeEl(a.started_at, "both"), " · ", `${a.duration_ms} ms`, " · response ", httpStatus(a.response_status)),
      curl,
    ),
    a.error
      ? h("div", { class: "attempt-error" }, h("p", { class: "label" }, "Error", a.error_kind ? [" · ", mono(a.error_kind)] : null), h("pre", { class: "error-text", tabindex: 0 }, a.error))
      : null,
    h(
      "details",
      { class: "attempt-part", open: open && a.response_body ? true : false },
      h("summary", {}, "Response body", a.response_body ? ` (${a.response_body.length} characters${a.response_body.length >= 4096 ? ", first 4 KiB" : ""})` : " (empty)"),
      a.response_body ? h("pre", { class: "body-text", tabindex: 0 }, a.response_body) : h("p", { class: "muted" }, "The response had no body."),
    ),
    h(
      "details",
      { class: "attempt-part" },
      h("summary", {}, `Request headers (${headers.length})`),
      headers.length
        ? h(
            "table",
            { class: "kv" },
            h("tbody", {}, headers.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, mono(typeof v === "string" ? v : jsonText(v)))))),
          )
        : h("p", { class: "muted" }, "None recorded."),
    ),
  );
}

/** One delivery: status, ids, payload, attempts, Retry. */
export function detail(root, route, ctx) {
  const id = route.params[0];
  ctx.title(`Delivery ${id}`);
  const statusSlot = h("span", { class: "status-slot" });
  const retryBtn = ctx.canWrite ? h("button", { type: "button", class: "btn btn-primary", id: "retry" }, "Retry now") : null;
  const refreshBtn = h("button", { type: "button", class: "btn" }, "Refresh");
  const retryNote = h("p", { class: "action-note", role: "status" });
  const content = h("div", {}, loading("Loading the delivery…"));
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/deliveries" }, "Deliveries"), " › ", mono(id)),
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Delivery ", statusSlot), h("p", { class: "muted" }, mono(id), " ", copyButton(id, "Copy id"))),
      h("div", { class: "page-actions" }, retryBtn, refreshBtn),
    ),
    retryNote,
    content,
  );

  let delivery = null;
  let attemptsShown = -1;
  // Stream changes seen for this delivery, so a late answer to Retry cannot undo a newer state.
  let heard = 0;
  // Attempts on screen when Retry was pressed: the note goes once a newer one is shown.
  let retriedAt = null;

  const render = (d) => {
    delivery = d;
    fill(statusSlot, badge(d.status));
    root.dataset.status = d.status;
    const attempts = [...(d.attempts || [])].sort((a, b) => b.n - a.n);
    const count = d.attempt_count ?? attempts.length;
    let callout = null;
    if (d.status === "failed") {
      callout = h(
        "div",
        { class: "callout callout-failed", role: "alert" },
        h("p", { class: "callout-title" }, `Failed after ${count} attempt${count === 1 ? "" : "s"} — it is in the dead-letter queue.`),
        d.last_response_status ? h("p", {}, "Last response: ", httpStatus(d.last_response_status)) : null,
        d.last_error ? h("pre", { class: "error-text", tabindex: 0 }, d.last_error) : null,
      );
    } else if (d.status === "pending" && d.last_error) {
      callout = h(
        "div",
        { class: "callout callout-pending" },
        h("p", { class: "callout-title" }, `Attempt ${count} failed; retrying `, timeEl(d.next_attempt_at, "both"), "."),
        h("pre", { class: "error-text", tabindex: 0 }, d.last_error),
      );
    } else if (d.status === "cancelled") {
      callout = h("div", { class: "callout" }, h("p", {}, "Cancelled: its webhook was deleted, or held deliveries were discarded on resume."));
    }
    const data = d.event ? d.event.data : null;
    fill(content,
      callout,
      fields([
        ["Status", badge(d.status)],
        ["Event type", h("strong", {}, d.event_type)],
        ["Event", link(["events", d.event_id], d.event_id, { class: "mono" })],
        ["Webhook", [webhookLink(ctx, d.webhook_id), " ", mono(d.webhook_id, { class: "mono muted" })]],
        ["Attempts", String(count)],
        ["Last response", httpStatus(d.last_response_status)],
        ["Created", timeEl(d.created_at, "both")],
        ["Next attempt", d.status === "pending" ? timeEl(d.next_attempt_at, "both") : h("span", { class: "muted" }, "—")],
        ["Delivered", timeEl(d.delivered_at, "both")],
      ]),
      h(
        "section",
        { class: "section", "aria-labelledby": "payload-title" },
        h(
          "div",
          { class: "section-head" },
          h("h2", { id: "payload-title" }, "Event payload"),
          d.event ? h("span", { class: "muted" }, "timestamp ", timeEl(d.event.timestamp, "both")) : null,
          copyButton(() => jsonText(data), "Copy JSON"),
        ),
        jsonView(data, "Event payload"),
      ),
      h(
        "section",
        { class: "section", "aria-labelledby": "attempts-title" },
        h("h2", { id: "attempts-title" }, `Attempts (${attempts.length})`),
        attempts.length
          ? h("div", { class: "attempts" }, attempts.map((a, i) => attemptCard(a, i === 0, d.request, d.id)))
          : emptyState("No attempt yet.", d.status === "pending" ? "The first attempt is queued; it appears here when it is made." : null),
      ),
    );
    attemptsShown = attempts.length;
    if (retriedAt !== null && attempts.length > retriedAt) {
      const latest = attempts[0];
      fill(retryNote, `Retry queued. Attempt ${latest.n} ${attemptOk(latest) ? "succeeded" : "failed"}.`);
      retriedAt = null;
    }
  };

  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      await ctx.webhooks.load().catch(() => null);
      const d = await getExact(`/api/v1/deliveries/${encodeURIComponent(id)}`);
      if (mine === generation) render(d);
    } catch (err) {
      if (mine !== generation) return;
      fill(content, errorBox(err, err.status === 404 ? "No such delivery" : "Could not load the delivery"));
    }
  };
  refreshBtn.addEventListener("click", load);
  load();

  if (retryBtn) {
    retryBtn.addEventListener("click", async () => {
      retryBtn.disabled = true;
      retryBtn.textContent = "Retrying…";
      clear(retryNote);
      const heardBefore = heard;
      try {
        await post(`/api/v1/deliveries/${encodeURIComponent(id)}/retry`);
        retriedAt = attemptsShown;
        fill(retryNote,
          "Retry queued. ",
          ctx.stream.status === "live" ? "The new attempt will appear here as soon as it is made." : "Live updates are off: press Refresh to see the new attempt.",
        );
        if (delivery && heard === heardBefore) {
          delivery.status = "pending";
          fill(statusSlot, badge("pending"));
          root.dataset.status = "pending";
        }
      } catch (err) {
        fill(retryNote, errorBox(err, "Could not retry"));
      } finally {
        retryBtn.disabled = false;
        retryBtn.textContent = "Retry now";
      }
    });
  }

  // Status changes arrive on the stream; a recorded attempt needs the detail fetched again.
  let pending = null;
  const offDelivery = ctx.stream.on("delivery", (change) => {
    if (change.id !== id || !delivery) return;
    heard += 1;
    mergeDelivery(delivery, change);
    fill(statusSlot, badge(delivery.status));
    root.dataset.status = delivery.status;
    if (change.attempts !== attemptsShown) {
      clearTimeout(pending);
      pending = setTimeout(load, 100);
    }
  });
  const offResync = ctx.stream.on("resync", load);
  return () => {
    clearTimeout(pending);
    offDelivery();
    offResync();
  };
}
