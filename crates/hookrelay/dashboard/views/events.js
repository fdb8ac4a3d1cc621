// Events: the append-only log (filter by type; new events appear live) and one event with its
// data and the deliveries it produced.

import { get, getExact } from "../api.js";
import { badge, clear, copyButton, emptyState, errorBox, fields, fill, h, httpStatus, jsonText, jsonView, link, loading, mono, table, timeEl, morePager } from "../dom.js";
import { errorSnippet, eventTypeInput, mergeDelivery, webhookLink } from "./deliveries.js";
import { replayEventDialog } from "./replay.js";

export function list(root, route, ctx) {
  ctx.title("Events");
  const type = route.query.type || "";
  const [input, typeList] = eventTypeInput(ctx, "ev-type", "type", type);
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter events" },
    h("div", { class: "form-field grow" }, h("label", { for: "ev-type" }, "Event type"), input, typeList),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Apply"), h("a", { class: "btn", href: "#/events" }, "Clear")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.navigate("events", { type: input.value.trim() });
  });
  const body = h("div", {}, loading("Loading events…"));
  const more = h("div", { class: "more" });
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Events"), h("p", { class: "muted" }, "Everything your applications and sources sent, newest first."))),
    form,
    body,
    more,
  );

  const seen = new Set();
  let tbody = null;
  const row = (e, fresh) =>
    h(
      "tr",
      { "data-id": e.id, class: fresh ? "flash row-new" : null },
      h("td", { class: "nowrap" }, timeEl(e.created_at)),
      h("td", {}, link(["events", e.id], e.type, { class: "strong" })),
      h("td", {}, e.source ? mono(e.source) : h("span", { class: "muted" }, "API")),
      h("td", { class: "opt" }, mono(e.id, { class: "mono muted" })),
    );
  const renderTable = () => {
    const t = table("Events", ["Received", "Type", "Source", { text: "Id", class: "opt" }], []);
    tbody = t.tbody;
    fill(body, t.el);
  };
  const add = (e, prepend = false) => {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    if (prepend) tbody.prepend(row(e, true));
    else tbody.append(row(e, false));
  };
  const pager = morePager(more, (cursor) => get("/api/v1/events", { type, cursor, limit: 50 }), (e) => add(e), "events");
  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      const page = await get("/api/v1/events", { type, limit: 50 });
      if (mine !== generation) return;
      seen.clear();
      pager.cursor = page.next_cursor;
      if (!page.data.length) {
        tbody = null;
        fill(body, emptyState(type ? `No ${type} events.` : "No events yet.", "Send one with POST /api/v1/events, or point a source at hookrelay. They appear here live."));
      } else {
        renderTable();
        page.data.forEach((e) => add(e));
      }
      pager.render();
    } catch (err) {
      if (mine === generation) fill(body, errorBox(err, "Could not load events"));
    }
  };
  load();
  const offEvent = ctx.stream.on("event", (e) => {
    if (type && e.type !== type) return;
    if (!tbody) renderTable();
    add(e, true);
  });
  const offResync = ctx.stream.on("resync", load);
  return () => {
    offEvent();
    offResync();
  };
}

export function detail(root, route, ctx) {
  const id = route.params[0];
  ctx.title(`Event ${id}`);
  const content = h("div", {}, loading("Loading the event…"));
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/events" }, "Events"), " › ", mono(id)),
    content,
  );
  const deliveries = new Map();
  let tbody = null;
  let event = null;
  // Shown above the deliveries; kept across re-renders so a replay's result stays in view.
  const replayNote = h("div", { class: "action-note", role: "status", id: "replay-result" });
  const countTitle = h("h2", { id: "ed-title" });
  const setCount = () => fill(countTitle, `Deliveries (${deliveries.size})`);
  const deliveryRow = (d, fresh) =>
    h(
      "tr",
      { "data-id": d.id, "data-status": d.status, class: [`row-${d.status}`, fresh ? "flash row-new" : null] },
      h("td", {}, link(["deliveries", d.id], d.id, { class: "mono" })),
      h("td", { class: "col-url" }, webhookLink(ctx, d.webhook_id)),
      h("td", {}, badge(d.status)),
      h("td", { class: "num" }, String(d.attempts)),
      h("td", { class: "col-response" }, httpStatus(d.last_response_status), d.last_error ? [" ", errorSnippet(d.last_error)] : null),
    );
  const replayBtn = ctx.canWrite ? h("button", { type: "button", class: "btn btn-primary", id: "replay-event" }, "Replay") : null;
  if (replayBtn) {
    replayBtn.addEventListener("click", async () => {
      if (!event) return;
      const res = await replayEventDialog(ctx, event);
      replayBtn.focus();
      if (!res) return;
      const n = res.deliveries;
      fill(replayNote,
        n === 0
          ? "Replayed: no webhook matches this event now, so no delivery was created."
          : `Replayed: ${n} new ${n === 1 ? "delivery" : "deliveries"}. ${ctx.stream.status === "live" ? "They appear below as they are sent." : "Live updates are off: press Refresh to follow them."}`,
      );
      // Without the stream the new rows would never come: fetch the event again.
      if (ctx.stream.status !== "live") load();
    });
  }
  const refreshBtn = h("button", { type: "button", class: "btn" }, "Refresh");
  refreshBtn.addEventListener("click", () => load());

  const render = (e) => {
    event = e;
    ctx.title(`${e.type} · ${id}`);
    const t = table("Deliveries of this event", ["Delivery", { text: "Webhook", class: "col-url" }, "Status", { text: "Attempts", class: "num" }, "Last response"], []);
    tbody = t.tbody;
    deliveries.clear();
    for (const d of e.deliveries || []) {
      const tr = deliveryRow(d);
      deliveries.set(d.id, { data: d, tr });
      tbody.append(tr);
    }
    setCount();
    const empty = emptyState("No webhook matched this event.", "Deliveries are created for every webhook whose patterns match the type.");
    // A replay's first delivery replaces the empty state with the table.
    t.el.hidden = deliveries.size === 0;
    empty.hidden = deliveries.size > 0;
    fill(content,
      h(
        "div",
        { class: "page-head" },
        h("div", {}, h("h1", {}, e.type), h("p", { class: "muted" }, mono(id), " ", copyButton(id, "Copy id"))),
        h("div", { class: "page-actions" }, replayBtn, h("a", { class: "btn", href: ctx.href("deliveries", { event_id: id }) }, "In deliveries"), refreshBtn),
      ),
      fields([
        ["Type", h("strong", {}, e.type)],
        ["Source", e.source ? link(["sources"], e.source) : h("span", { class: "muted" }, "sent through the API")],
        ["Client event id", e.event_id ? mono(e.event_id) : h("span", { class: "muted" }, "—")],
        ["Timestamp", timeEl(e.timestamp, "both")],
        ["Received", timeEl(e.created_at, "both")],
      ]),
      h(
        "section",
        { class: "section", "aria-labelledby": "data-title" },
        h("div", { class: "section-head" }, h("h2", { id: "data-title" }, "Data"), copyButton(() => jsonText(e.data), "Copy JSON")),
        jsonView(e.data, "Event data"),
      ),
      h("section", { class: "section", "aria-labelledby": "ed-title" }, countTitle, replayNote, t.el, empty),
    );
    tableEl = t.el;
    emptyEl = empty;
  };
  let tableEl = null;
  let emptyEl = null;
  const load = async () => {
    try {
      await ctx.webhooks.load().catch(() => null);
      render(await getExact(`/api/v1/events/${encodeURIComponent(id)}`));
    } catch (err) {
      fill(content, errorBox(err, err.status === 404 ? "No such event" : "Could not load the event"));
    }
  };
  load();
  const offDelivery = ctx.stream.on("delivery", async (d) => {
    const row = deliveries.get(d.id);
    if (!row) {
      // A new delivery of this event (a replay, from here or elsewhere) goes on top.
      if (!tbody || d.event_id !== id || !d.created_at) return;
      if (!ctx.webhooks.get(d.webhook_id)) await ctx.webhooks.load(true).catch(() => null);
      if (deliveries.has(d.id)) return;
      const data = { ...d };
      const tr = deliveryRow(data, true);
      deliveries.set(d.id, { data, tr });
      tbody.prepend(tr);
      tableEl.hidden = false;
      emptyEl.hidden = true;
      setCount();
      return;
    }
    mergeDelivery(row.data, d);
    const tr = deliveryRow(row.data);
    row.tr.replaceWith(tr);
    row.tr = tr;
  });
  const offResync = ctx.stream.on("resync", load);
  return () => {
    offDelivery();
    offResync();
  };
}
