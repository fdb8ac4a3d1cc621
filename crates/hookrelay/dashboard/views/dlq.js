// The dead-letter queue: deliveries whose retries ran out, with a retry per row and a bulk
// retry of everything failed for one webhook (after its outage is fixed).

import { get, post } from "../api.js";
import { badge, clear, confirmDialog, emptyState, errorBox, fill, h, httpStatus, link, loading, table, timeEl, morePager } from "../dom.js";
import { errorSnippet, eventTypeInput, webhookLink, webhookSelect } from "./deliveries.js";

export function list(root, route, ctx) {
  ctx.title("Dead letters");
  const filters = { webhook_id: route.query.webhook_id || "", event_type: route.query.event_type || "" };
  const hook = webhookSelect(ctx, "dlq-webhook", filters.webhook_id);
  const [type, typeList] = eventTypeInput(ctx, "dlq-type", "event_type", filters.event_type);
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the dead-letter queue" },
    h("div", { class: "form-field grow" }, h("label", { for: "dlq-webhook" }, "Webhook"), hook),
    h("div", { class: "form-field" }, h("label", { for: "dlq-type" }, "Event type"), type, typeList),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Apply"), h("a", { class: "btn", href: "#/dlq" }, "Clear")),
  );
  const apply = (e) => {
    if (e) e.preventDefault();
    ctx.navigate("dlq", { webhook_id: hook.value, event_type: type.value.trim() });
  };
  form.addEventListener("submit", apply);
  hook.addEventListener("change", () => apply());

  const bulk = h("div", { class: "bulk" });
  const body = h("div", {}, loading("Loading the dead-letter queue…"));
  const more = h("div", { class: "more" });
  const refresh = h("button", { type: "button", class: "btn btn-small" }, "Refresh");
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Dead-letter queue"), h("p", { class: "muted" }, "Deliveries that failed every retry. Fix the receiver, then retry them.")),
      h("div", { class: "page-actions" }, refresh),
    ),
    form,
    bulk,
    body,
    more,
  );

  const rows = new Map(); // delivery id → {entry, tr}
  let tbody = null;

  const renderRow = (e, state) => {
    const retry = ctx.canWrite && state === "succeeded"
      ? h("span", { class: "muted small" }, "left the queue")
      : ctx.canWrite
      ? h("button", { type: "button", class: "btn btn-small", "data-action": "retry", disabled: state ? true : false }, state === "queued" ? "Queued" : "Retry")
      : null;
    if (retry && retry.nodeName === "BUTTON") {
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        retry.textContent = "Retrying…";
        const row = rows.get(e.delivery_id);
        if (row) row.heard = false;
        try {
          await post(`/api/v1/dlq/${encodeURIComponent(e.delivery_id)}/retry`);
          // The new attempt may already have been reported on the stream: keep its outcome.
          if (!row || !row.heard) setState(e.delivery_id, "queued");
          ctx.notify("Retry queued.", "success");
        } catch (err) {
          retry.disabled = false;
          retry.textContent = "Retry";
          ctx.notify(`Could not retry: ${err.message}${err.requestId ? ` (request ${err.requestId})` : ""}`, "error");
        }
      });
    }
    const statusCell =
      state === "queued" ? badge("pending", "queued") : state === "succeeded" ? badge("succeeded", "succeeded") : badge("failed");
    return h(
      "tr",
      { "data-id": e.delivery_id, class: state ? `row-${state}` : "row-failed" },
      h("td", { class: "nowrap" }, timeEl(e.failed_at)),
      h("td", {}, link(["deliveries", e.delivery_id], e.event_type, { class: "strong" })),
      h("td", { class: "col-url" }, webhookLink(ctx, e.webhook_id)),
      h("td", {}, statusCell),
      h("td", { class: "num" }, String(e.attempts)),
      h("td", { class: "col-error" }, httpStatus(e.last_response_status), " ", errorSnippet(e.last_error) || (state === "succeeded" ? null : h("span", { class: "muted" }, "no error text"))),
      ctx.canWrite ? h("td", { class: "actions-cell" }, retry) : null,
    );
  };

  const setState = (id, state) => {
    const row = rows.get(id);
    if (!row) return;
    row.state = state;
    const tr = renderRow(row.entry, state);
    row.tr.replaceWith(tr);
    row.tr = tr;
  };

  const renderBulk = () => {
    clear(bulk);
    if (!ctx.canWrite) return;
    if (!filters.webhook_id) {
      bulk.append(h("p", { class: "hint" }, "Choose a webhook above to retry all of its failed deliveries at once."));
      return;
    }
    const btn = h("button", { type: "button", class: "btn btn-primary", id: "bulk-retry" }, "Retry all failed for this webhook");
    const result = h("span", { class: "action-note", role: "status", id: "bulk-result" });
    btn.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: "Retry every failed delivery?",
        text: `Every failed delivery to ${ctx.webhooks.label(filters.webhook_id)} goes back to pending and is attempted now.`,
        confirm: "Retry all",
      });
      if (!ok) return;
      btn.disabled = true;
      for (const row of rows.values()) row.heard = false;
      try {
        const res = await post("/api/v1/dlq/retry", { webhook_id: filters.webhook_id });
        result.textContent = `Queued ${res.queued} ${res.queued === 1 ? "delivery" : "deliveries"} for retry.`;
        for (const [id, row] of rows) {
          if (row.entry.webhook_id === filters.webhook_id && !row.state && !row.heard) setState(id, "queued");
        }
      } catch (err) {
        fill(result, errorBox(err, "Could not retry"));
      } finally {
        btn.disabled = false;
      }
    });
    bulk.append(h("div", { class: "bulk-bar" }, h("span", {}, "Webhook ", h("strong", { class: "url" }, ctx.webhooks.label(filters.webhook_id))), btn, result));
  };

  const add = (e) => {
    if (rows.has(e.delivery_id)) return;
    const tr = renderRow(e, null);
    rows.set(e.delivery_id, { entry: e, tr, state: null });
    tbody.append(tr);
  };

  const pager = morePager(more, (cursor) => get("/api/v1/dlq", { ...filters, cursor, limit: 50 }), add, "dead letters");

  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      await ctx.webhooks.load().catch(() => null);
      const page = await get("/api/v1/dlq", { ...filters, limit: 50 });
      if (mine !== generation) return;
      renderBulk();
      rows.clear();
      pager.cursor = page.next_cursor;
      if (page.data.length === 0) {
        fill(body, emptyState("The dead-letter queue is empty.", "A delivery lands here when every retry has failed. Nothing is waiting for you."));
      } else {
        const headers = ["Failed", "Event type", { text: "Webhook", class: "col-url" }, "Status", { text: "Attempts", class: "num" }, "Last response and error"];
        if (ctx.canWrite) headers.push({ text: "Action", class: "actions-cell" });
        const t = table("Failed deliveries", headers, []);
        tbody = t.tbody;
        fill(body, t.el);
        page.data.forEach(add);
      }
      pager.render();
    } catch (err) {
      if (mine === generation) fill(body, errorBox(err, "Could not load the dead-letter queue"));
    }
  };
  refresh.addEventListener("click", load);
  load();

  // A retried row shows how its new attempt went; a failed one returns to "failed".
  const offDelivery = ctx.stream.on("delivery", (d) => {
    const row = rows.get(d.id);
    if (!row) return;
    row.heard = true;
    // Show the latest attempt's outcome (the stream cuts an error to 300 characters; the
    // delivery's page has all of it).
    Object.assign(row.entry, { attempts: d.attempts, last_error: d.last_error, last_response_status: d.last_response_status });
    if (d.status === "succeeded") setState(d.id, "succeeded");
    else if (d.status === "failed") {
      row.entry.failed_at = d.updated_at;
      setState(d.id, null);
    } else if (d.status === "pending") setState(d.id, "queued");
  });
  const offResync = ctx.stream.on("resync", load);
  return () => {
    offDelivery();
    offResync();
  };
}
