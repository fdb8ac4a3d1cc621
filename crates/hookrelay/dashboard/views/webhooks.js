// Webhooks: the list, the creation form (the signing secret is shown once), and one webhook
// with its stats and charts, pause/resume, a test send and deletion.

import { del, get, patch, post } from "../api.js";
import { liveCharts, rangePicker } from "./overview.js";
import { rotateDialog } from "./webhook-edit.js";
import { replayWebhookDialog } from "./replay.js";
import { badge, clear, confirmDialog, copyButton, emptyState, errorBox, fields, fill, h, httpStatus, jsonView, link, loading, mono, table, timeEl, morePager } from "../dom.js";

const KINDS = [
  ["http", "HTTP (signed JSON POST)"],
  ["discord", "Discord"],
  ["slack", "Slack"],
];

function activeBadge(w) {
  return w.active ? badge("active", "active") : badge("paused", "paused");
}

/** The webhook's health as one of healthy / failing / open / disabled, with why (the API's
 * `circuit` and `disabled_reason`). Exported for the unit tests. */
export function health(w) {
  const c = w.circuit || {};
  if (w.disabled_reason) return { kind: "disabled", text: `disabled: ${w.disabled_reason}` };
  if (c.state === "open") return { kind: "open", text: "circuit open" };
  if (c.state === "half_open") return { kind: "open", text: "circuit half-open" };
  if (c.consecutive_failures > 0) return { kind: "failing", text: `failing (${c.consecutive_failures})` };
  return { kind: "healthy", text: "healthy" };
}

function healthBadge(w) {
  const { kind, text } = health(w);
  const title = kind === "open" && w.circuit.open_until ? `no attempt before ${w.circuit.open_until}` : null;
  return h("span", { class: `badge badge-health badge-health-${kind}`, "data-health": kind, title }, text);
}

function patterns(events) {
  if (!events || !events.length) return h("span", { class: "muted" }, "all events");
  return h("span", { class: "chips" }, events.map((p) => h("code", { class: "chip" }, p)));
}

export function list(root, route, ctx) {
  ctx.title("Webhooks");
  const body = h("div", {}, loading("Loading webhooks…"));
  const more = h("div", { class: "more" });
  const create = ctx.canWrite ? h("a", { class: "btn btn-primary", href: "#/webhooks/new", id: "new-webhook" }, "New webhook") : null;
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Webhooks"), h("p", { class: "muted" }, "Where events are delivered.")), h("div", { class: "page-actions" }, create)),
    body,
    more,
  );
  let tbody = null;
  const row = (w) =>
    h(
      "tr",
      { "data-id": w.id, class: w.active ? null : "row-paused" },
      h("td", { class: "col-url" }, link(["webhooks", w.id], w.url, { class: "url strong" }), w.description ? h("div", { class: "muted small" }, w.description) : null),
      h("td", {}, w.kind),
      h("td", {}, patterns(w.events)),
      h("td", {}, activeBadge(w)),
      h("td", {}, healthBadge(w)),
      h("td", { class: "nowrap opt" }, timeEl(w.created_at)),
    );
  const pager = morePager(more, (cursor) => get("/api/v1/webhooks", { cursor, limit: 100 }), (w) => tbody.append(row(w)), "webhooks");
  (async () => {
    try {
      const page = await get("/api/v1/webhooks", { limit: 100 });
      pager.cursor = page.next_cursor;
      if (!page.data.length) {
        fill(body,
          emptyState("No webhooks yet.", "A webhook is a URL that receives the events you choose, signed so the receiver can trust them.", create ? h("a", { class: "btn btn-primary", href: "#/webhooks/new" }, "Create the first webhook") : null),
        );
      } else {
        const t = table("Webhooks", [{ text: "URL", class: "col-url" }, "Kind", "Events", "Status", "Health", { text: "Created", class: "opt" }], page.data.map(row));
        tbody = t.tbody;
        fill(body, t.el);
      }
      pager.render();
    } catch (err) {
      fill(body, errorBox(err, "Could not load webhooks"));
    }
  })();
}

/** Shows field errors from a 422 next to their inputs (`details[].field`). */
function showFieldErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  let first = null;
  for (const d of err.details || []) {
    const name = String(d.field || "").split(/[.[]/)[0];
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    const msg = h("p", { class: "field-error", id: `${input.id}-error` }, d.message);
    input.setAttribute("aria-describedby", msg.id);
    input.closest(".form-field").append(msg);
    first = first || input;
  }
  if (first) first.focus();
}

export function create(root, route, ctx) {
  ctx.title("New webhook");
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/webhooks" }, "Webhooks"), " › new"));
  if (!ctx.canWrite) {
    root.append(h("h1", {}, "New webhook"), h("p", {}, `Your role (${ctx.me.role}) can look at webhooks but not create them.`));
    return;
  }
  const url = h("input", { id: "wh-url", name: "url", type: "url", required: true, placeholder: "https://example.com/hooks", spellcheck: "false", autocomplete: "off" });
  const events = h("textarea", { id: "wh-events", name: "events", rows: 3, spellcheck: "false", placeholder: "member.created\ngithub.*" });
  const kind = h("select", { id: "wh-kind", name: "kind" }, KINDS.map(([v, t]) => h("option", { value: v }, t)));
  const description = h("input", { id: "wh-description", name: "description", type: "text", maxlength: 1024, placeholder: "CRM sync" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create webhook");
  const errors = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "webhook-form" },
    h("div", { class: "form-field" }, h("label", { for: "wh-url" }, "Endpoint URL"), url, h("p", { class: "hint" }, "Receives a signed POST for every matching event.")),
    h(
      "div",
      { class: "form-field" },
      h("label", { for: "wh-events" }, "Event types"),
      events,
      h("p", { class: "hint" }, "One pattern per line or comma-separated: an exact type, a prefix like ", mono("github.*"), ", or empty for every event."),
    ),
    h("div", { class: "form-row" }, h("div", { class: "form-field" }, h("label", { for: "wh-kind" }, "Kind"), kind), h("div", { class: "form-field grow" }, h("label", { for: "wh-description" }, "Description (optional)"), description)),
    errors,
    h("div", { class: "actions" }, submit, h("a", { class: "btn", href: "#/webhooks" }, "Cancel")),
  );
  const result = h("div");
  root.append(h("h1", {}, "New webhook"), form, result);
  url.focus();

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    const body = {
      url: url.value.trim(),
      events: events.value
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter(Boolean),
      kind: kind.value,
    };
    if (description.value.trim()) body.description = description.value.trim();
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const w = await post("/api/v1/webhooks", body);
      ctx.webhooks.invalidate();
      form.remove();
      const secret = h("code", { class: "secret selectable", id: "webhook-secret" }, w.secret);
      result.append(
        h(
          "section",
          { class: "callout callout-ok", "aria-labelledby": "created-title" },
          h("h2", { id: "created-title" }, "Webhook created"),
          h("p", {}, "Use this secret to verify the signature of every delivery. ", h("strong", {}, "It is shown only this once"), " — store it now."),
          h("div", { class: "secret-row" }, secret, copyButton(w.secret, "Copy secret")),
          (w.warnings || []).length
            ? h("div", { class: "warnings" }, h("p", { class: "label" }, "Warnings"), h("ul", {}, w.warnings.map((x) => h("li", {}, mono(x.field), ": ", x.message))))
            : null,
          h("div", { class: "actions" }, link(["webhooks", w.id], "Open the webhook", { class: "btn btn-primary" }), h("a", { class: "btn", href: "#/webhooks" }, "Back to webhooks")),
        ),
      );
      result.querySelector("h2").setAttribute("tabindex", "-1");
      result.querySelector("h2").focus();
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Create webhook";
      fill(errors, errorBox(err, "Could not create the webhook"));
      showFieldErrors(form, err);
    }
  });
}

function statCard(label, value, cls) {
  return h("div", { class: ["stat", cls] }, h("p", { class: "stat-value" }, value), h("p", { class: "stat-label" }, label));
}

export function detail(root, route, ctx) {
  const id = route.params[0];
  ctx.title(`Webhook ${id}`);
  const content = h("div", {}, loading("Loading the webhook…"));
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/webhooks" }, "Webhooks"), " › ", mono(id)), content);

  let webhook = null;
  const statusSlot = h("span", { class: "status-slot" });
  const note = h("div", { class: "action-note", role: "status", id: "webhook-note" });
  const stats = h("div", { class: "stats" }, loading("Loading stats…"));
  const testResult = h("div", { id: "test-result", "aria-live": "polite" });
  const rotated = h("div", { id: "rotated" });

  const loadStats = async (window) => {
    try {
      const s = await get(`/api/v1/webhooks/${encodeURIComponent(id)}/stats`, { window });
      const rate = s.success_rate === null || s.success_rate === undefined ? "—" : `${(s.success_rate * 100).toFixed(s.success_rate === 1 ? 0 : 1)} %`;
      fill(stats,
        statCard("attempts", String(s.attempts)),
        statCard("succeeded", String(s.successes), "stat-ok"),
        statCard("failed", String(s.failures), s.failures ? "stat-bad" : null),
        statCard("success rate", rate),
        statCard("response time p50", s.latency_p50_ms === null ? "—" : `${s.latency_p50_ms} ms`),
        statCard("response time p95", s.latency_p95_ms === null ? "—" : `${s.latency_p95_ms} ms`),
      );
    } catch (err) {
      fill(stats, errorBox(err, "Could not load stats"));
    }
  };

  const render = (w) => {
    webhook = w;
    ctx.title(w.url);
    fill(statusSlot, activeBadge(w));
    const actions = [];
    if (ctx.canWrite) {
      const toggle = h("button", { type: "button", class: "btn", id: "toggle-active" }, w.active ? "Pause" : "Resume");
      toggle.addEventListener("click", async () => {
        toggle.disabled = true;
        const next = !webhook.active;
        try {
          const updated = await patch(`/api/v1/webhooks/${encodeURIComponent(id)}`, { active: next });
          ctx.webhooks.invalidate();
          // Pausing shows its own callout below; resuming says what happens to what waited.
          fill(note, next ? "Resumed: deliveries held while paused are being sent now." : null);
          render(updated);
          document.getElementById("toggle-active")?.focus();
        } catch (err) {
          fill(note, errorBox(err, next ? "Could not resume" : "Could not pause"));
          toggle.disabled = false;
        }
      });
      const test = h("button", { type: "button", class: "btn", id: "send-test" }, "Send test");
      test.addEventListener("click", async () => {
        test.disabled = true;
        test.textContent = "Sending…";
        fill(testResult, loading("Sending a webhook.test event…"));
        try {
          const r = await post(`/api/v1/webhooks/${encodeURIComponent(id)}/test`);
          const ok = r.status === "succeeded";
          fill(testResult,
            h(
              "div",
              { class: ["callout", ok ? "callout-ok" : "callout-failed"] },
              h("p", { class: "callout-title" }, "Test delivery ", badge(r.status), " · response ", httpStatus(r.response_status), ` · ${r.duration_ms} ms`),
              r.error ? h("pre", { class: "error-text", tabindex: 0 }, r.error) : null,
              h("p", {}, link(["deliveries", r.delivery_id], "Open the test delivery")),
            ),
          );
          loadStats(range);
          charts.load(range);
        } catch (err) {
          fill(testResult, errorBox(err, "Could not send the test"));
        } finally {
          test.disabled = false;
          test.textContent = "Send test";
        }
      });
      const remove = h("button", { type: "button", class: "btn btn-danger", id: "delete-webhook" }, "Delete");
      remove.addEventListener("click", async () => {
        const ok = await confirmDialog({
          title: "Delete this webhook?",
          text: `${w.url} stops receiving events and its pending deliveries are cancelled. This cannot be undone.`,
          confirm: "Delete webhook",
          danger: true,
        });
        if (!ok) return;
        try {
          await del(`/api/v1/webhooks/${encodeURIComponent(id)}`);
          ctx.webhooks.invalidate();
          ctx.notify(`Deleted the webhook ${w.url}.`, "success");
          ctx.navigate("webhooks");
        } catch (err) {
          fill(note, errorBox(err, "Could not delete"));
        }
      });
      const editLink = h("a", { class: "btn", id: "edit-webhook", href: `#/webhooks/${encodeURIComponent(id)}/edit` }, "Edit");
      const rotate = h("button", { type: "button", class: "btn", id: "rotate-secret" }, "Rotate secret");
      rotate.addEventListener("click", async () => {
        await rotateDialog(webhook, rotated);
        if (!rotated.firstChild) rotate.focus();
      });
      const replay = h("button", { type: "button", class: "btn", id: "replay-webhook" }, "Replay since…");
      replay.addEventListener("click", async () => {
        const r = await replayWebhookDialog(webhook);
        replay.focus();
        if (r) fill(note, h("span", { id: "replay-queued" }, `Replay queued ${r.queued} ${r.queued === 1 ? "delivery" : "deliveries"}.`), " ", h("a", { href: ctx.href("deliveries", { webhook_id: id }) }, "See its deliveries"));
      });
      actions.push(editLink, toggle, test, replay, rotate, remove);
    }
    fill(content,
      h(
        "div",
        { class: "page-head" },
        h("div", {}, h("h1", { class: "url-title" }, w.url, " ", statusSlot), h("p", { class: "muted" }, mono(id), " ", copyButton(id, "Copy id"))),
        h("div", { class: "page-actions" }, actions, h("a", { class: "btn", href: ctx.href("deliveries", { webhook_id: id }) }, "Deliveries")),
      ),
      note,
      w.active ? null : h("div", { class: "callout callout-pending" }, h("p", {}, w.disabled_reason ? `Disabled by hookrelay (${w.disabled_reason === "gone" ? "the receiver answered 410 Gone" : "every attempt failed for too long"}). Matching events still create deliveries; they wait as pending and are sent when you resume.` : "Paused. Matching events still create deliveries; they wait as pending and are sent when you resume.")),
      testResult,
      rotated,
      fields([
        ["Health", h("span", { id: "webhook-health" }, healthBadge(w))],
        ["Kind", w.kind],
        ["Events", patterns(w.events)],
        ["Description", w.description || h("span", { class: "muted" }, "—")],
        ["Custom headers", Object.keys(w.headers || {}).length ? Object.keys(w.headers).map((k) => mono(k)) : h("span", { class: "muted" }, "none")],
        ["Rate limit", w.rate_limit_per_sec ? `${w.rate_limit_per_sec} per second` : h("span", { class: "muted" }, "none")],
        ["Payload filter", w.filter ? jsonView(w.filter, "Payload filter") : h("span", { class: "muted" }, "none")],
        ["Ordered", w.ordered ? "yes: one at a time, in order" : "no"],
        w.kind === "discord" || w.kind === "slack" ? ["Templates", Object.keys(w.templates || {}).length ? h("span", { class: "chips" }, Object.keys(w.templates).map((k) => h("code", { class: "chip" }, k))) : h("span", { class: "muted" }, "built-in message")] : null,
        w.transform ? ["Body transform", h("pre", { class: "body-text", tabindex: 0 }, w.transform)] : null,
        ["Signature", w.signature_scheme === "ed25519" ? ["ed25519 (v1a) ", mono(w.public_key || "")] : "HMAC-SHA256 (v1)"],
        ["Retry schedule", w.retry_schedule_seconds ? (w.retry_schedule_seconds.length ? w.retry_schedule_seconds.map((s) => `${s} s`).join(", ") : "no retries") : h("span", { class: "muted" }, "server default")],
        ["Created", timeEl(w.created_at, "both")],
        ["Updated", timeEl(w.updated_at, "both")],
      ]),
      h(
        "section",
        { class: "section", "aria-labelledby": "stats-title" },
        h("div", { class: "section-head" }, h("h2", { id: "stats-title" }, "Delivery stats"), statsRange),
        stats,
        charts.el,
      ),
    );
  };

  // One range for the attempt figures and the charts; the charts refresh while the page is open.
  let range = "1h";
  const charts = liveCharts(ctx, { webhookId: id, idPrefix: "webhook-chart" });
  const statsRange = rangePicker(range, (next) => {
    range = next;
    for (const b of statsRange.querySelectorAll("button")) {
      b.setAttribute("aria-checked", String(b.dataset.range === next));
      b.tabIndex = b.dataset.range === next ? 0 : -1;
    }
    loadStats(range);
    charts.load(range);
  }, "stats-range");

  (async () => {
    try {
      render(await get(`/api/v1/webhooks/${encodeURIComponent(id)}`));
      loadStats(range);
      charts.load(range);
    } catch (err) {
      fill(content, errorBox(err, err.status === 404 ? "No such webhook" : "Could not load the webhook"));
    }
  })();
  return () => charts.destroy();
}
