// Deliveries: the filtered list (live: new rows at the top, status changes in place) and one
// delivery with its payload, every attempt and the Retry button.

import { get, getExact, post } from "../api.js";
import { badge, clear, copyButton, emptyState, errorBox, fields, fill, h, httpStatus, jsonText, jsonView, link, loading, mono, table, timeEl, morePager } from "../dom.js";
import { matchesFilters } from "../stream.js";

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

function filterForm(ctx, filters) {
  const status = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
  );
  const [type, typeList] = eventTypeInput(ctx, "f-type", "event_type", filters.event_type);
  const hook = webhookSelect(ctx, "f-webhook", filters.webhook_id);
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter deliveries" },
    h("div", { class: "form-field" }, h("label", { for: "f-status" }, "Status"), status),
    h("div", { class: "form-field" }, h("label", { for: "f-type" }, "Event type"), type, typeList),
    h("div", { class: "form-field grow" }, h("label", { for: "f-webhook" }, "Webhook"), hook),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Apply"),
      h("a", { class: "btn", href: "#/deliveries" }, "Clear"),
    ),
  );
  // Choosing from a select applies at once; typing an event type waits for Enter or Apply.
  const apply = (e) => {
    if (e) e.preventDefault();
    ctx.navigate("deliveries", { status: status.value, event_type: type.value.trim(), webhook_id: hook.value });
  };
  form.addEventListener("submit", apply);
  status.addEventListener("change", () => apply());
  hook.addEventListener("change", () => apply());
  return form;
}

/** The deliveries list. */
export function list(root, route, ctx) {
  ctx.title("Deliveries");
  const filters = {
    status: route.query.status || "",
    event_type: route.query.event_type || "",
    webhook_id: route.query.webhook_id || "",
  };
  const filtered = filters.status || filters.event_type || filters.webhook_id;
  const body = h("div", {}, loading("Loading deliveries…"));
  const more = h("div", { class: "more" });
  const refresh = h("button", { type: "button", class: "btn btn-small" }, "Refresh");
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Deliveries"), h("p", { class: "muted" }, "Every event sent to every webhook, newest first.")),
      h("div", { class: "page-actions" }, refresh),
    ),
    filterForm(ctx, filters),
    body,
    more,
  );

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

  const pager = morePager(more, (cursor) => get("/api/v1/deliveries", { ...filters, cursor, limit: 50 }), (d) => upsert(d), "deliveries");

  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      await ctx.webhooks.load().catch(() => null);
      const page = await get("/api/v1/deliveries", { ...filters, limit: 50 });
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
      if (mine === generation) fill(body, errorBox(err, "Could not load deliveries"));
    }
  };
  refresh.addEventListener("click", load);
  load();

  const offDelivery = ctx.stream.on("delivery", async (d) => {
    if (rows.has(d.id)) {
      upsert(d);
      return;
    }
    // Only a new delivery (created_at set) can be added: an attempt carries only the changes.
    if (!d.created_at || !matchesFilters(d, filters) || !body.isConnected) return;
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

function attemptCard(a, open) {
  const ok = attemptOk(a);
  const headers = a.request_headers && typeof a.request_headers === "object" ? Object.entries(a.request_headers) : [];
  return h(
    "article",
    { class: ["attempt", ok ? "attempt-ok" : "attempt-bad"], "data-n": a.n },
    h(
      "header",
      { class: "attempt-head" },
      h("h3", {}, `Attempt ${a.n}`),
      badge(ok ? "succeeded" : "failed", ok ? "succeeded" : "failed"),
      h("span", { class: "attempt-meta" }, timeEl(a.started_at, "both"), " · ", `${a.duration_ms} ms`, " · response ", httpStatus(a.response_status)),
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
          ? h("div", { class: "attempts" }, attempts.map((a, i) => attemptCard(a, i === 0)))
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
