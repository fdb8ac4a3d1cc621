// Editing a webhook: every field of PATCH /api/v1/webhooks/{id}, events picked from the catalog
// (with wildcards), templates with a live preview, and rotating the signing secret.

import { get, patch, post } from "../api.js";
import { clear, copyButton, errorBox, fill, h, jsonView, loading, mono } from "../dom.js";
import { clearFieldErrors, debounce, formField, jsonArea, localError, pairsEditor, readJson, reportError, same } from "./forms.js";

const EDIT_KINDS = [
  ["http", "HTTP (signed JSON POST)"],
  ["discord", "Discord"],
  ["slack", "Slack"],
  ["relay", "Relay (hookrelay listen)"],
  ["nats", "NATS"],
  ["rabbitmq", "RabbitMQ"],
  ["redis", "Redis stream"],
];
const CHAT = new Set(["discord", "slack"]);
const BROKER = new Set(["nats", "rabbitmq", "redis"]);

/** Whether an `events` pattern matches a type, as the server matches (`*` leaves out `hookrelay.*`). */
export function patternMatches(pattern, type) {
  if (pattern === "*") return !type.startsWith("hookrelay.");
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/** Suggestions for the event picker: every catalog type and every prefix wildcard of them. */
export function suggestions(types) {
  const out = new Set(["*"]);
  for (const t of types) {
    const parts = t.split(".");
    for (let i = 1; i < parts.length; i++) out.add(`${parts.slice(0, i).join(".")}.*`);
    out.add(t);
  }
  return [...out].sort();
}

/** The event picker: chips of the chosen patterns, an input with catalog suggestions. */
function eventPicker(initial, types) {
  let chosen = [...(initial || [])];
  const chips = h("ul", { class: "chips chips-edit", "aria-label": "Chosen event patterns" });
  const matches = h("p", { class: "hint", id: "wh-events-matches", "aria-live": "polite" });
  const input = h("input", { id: "wh-events", name: "events", type: "text", list: "wh-events-list", placeholder: "member.created or github.*", spellcheck: "false", autocomplete: "off" });
  const datalist = h("datalist", { id: "wh-events-list" }, suggestions(types).map((s) => h("option", { value: s })));
  const add = h("button", { type: "button", class: "btn btn-small", id: "wh-events-add" }, "Add");
  const render = () => {
    clear(chips);
    if (!chosen.length) chips.append(h("li", { class: "muted" }, "All events (no pattern chosen)"));
    chosen.forEach((p, i) => {
      const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${p}` }, "×");
      remove.addEventListener("click", () => {
        chosen.splice(i, 1);
        render();
        input.focus();
      });
      chips.append(h("li", { class: "chip", "data-pattern": p }, mono(p), remove));
    });
    const matched = types.filter((t) => (chosen.length ? chosen.some((p) => patternMatches(p, t)) : patternMatches("*", t)));
    fill(matches, types.length ? `Matches ${matched.length} of the catalog's ${types.length} types${matched.length ? `: ${matched.slice(0, 8).join(", ")}${matched.length > 8 ? "…" : ""}` : ""}.` : "The event catalog is empty; any dotted type or prefix.* works.");
  };
  const addValue = () => {
    for (const raw of input.value.split(/[\s,]+/)) {
      const p = raw.trim();
      if (p && !chosen.includes(p)) chosen.push(p);
    }
    input.value = "";
    render();
  };
  add.addEventListener("click", addValue);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addValue();
    }
  });
  render();
  const el = h(
    "div",
    { class: "form-field", "data-field": "events" },
    h("label", { for: "wh-events" }, "Event types"),
    chips,
    h("div", { class: "inline-add" }, input, add),
    datalist,
    h("p", { class: "hint" }, "Pick types from the catalog or a prefix wildcard such as ", mono("github.*"), "; ", mono("*"), " or none at all means every event."),
    matches,
  );
  return {
    el,
    read() {
      // Text typed but not added yet counts too: nobody expects it to be dropped on Save.
      if (input.value.trim()) addValue();
      return [...chosen];
    },
  };
}

function parseSchedule(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const out = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) return { error: `"${p}" is not a whole number of seconds` };
    out.push(Number(p));
  }
  return { value: out };
}

/** `#/webhooks/wh_…/edit`. */
export function edit(root, route, ctx) {
  const id = route.params[0];
  ctx.title(`Edit webhook ${id}`);
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/webhooks" }, "Webhooks"), " › ", h("a", { href: `#/webhooks/${encodeURIComponent(id)}` }, mono(id)), " › edit"));
  if (!ctx.canWrite) {
    root.append(h("h1", {}, "Edit webhook"), h("p", {}, `Your role (${ctx.me.role}) can look at webhooks but not change them.`));
    return;
  }
  const body = h("div", {}, loading("Loading the webhook…"));
  root.append(body);
  (async () => {
    let w;
    let types = [];
    try {
      w = await get(`/api/v1/webhooks/${encodeURIComponent(id)}`);
    } catch (err) {
      fill(body, errorBox(err, err.status === 404 ? "No such webhook" : "Could not load the webhook"));
      return;
    }
    try {
      types = await ctx.eventTypes();
    } catch {
      // Without the catalog the picker still takes typed patterns.
    }
    renderForm(body, w, types, ctx);
  })();
}

function renderForm(body, w, types, ctx) {
  const id = w.id;
  ctx.title(`Edit ${w.url}`);
  const url = h("input", { id: "wh-url", name: "url", type: "text", required: true, spellcheck: "false", autocomplete: "off", value: w.url });
  const kind = h("select", { id: "wh-kind", name: "kind" }, EDIT_KINDS.map(([v, t]) => h("option", { value: v, selected: v === w.kind }, t)));
  const description = h("input", { id: "wh-description", name: "description", type: "text", maxlength: 1024, value: w.description || "" });
  const picker = eventPicker(w.events, types);
  const filter = jsonArea("wh-filter", "filter", w.filter, 4);
  const headers = pairsEditor({ id: "wh-headers", name: "headers", entries: w.headers, keyLabel: "Header name", valueLabel: "Header value", keyPlaceholder: "X-Team", valuePlaceholder: "crm", addText: "Add header" });
  const scheduleMode = h(
    "select",
    { id: "wh-retry-mode", name: "retry_schedule_seconds" },
    h("option", { value: "default", selected: !w.retry_schedule_seconds }, "Server default"),
    h("option", { value: "custom", selected: !!w.retry_schedule_seconds }, "Custom"),
  );
  const schedule = h("input", { id: "wh-retry", type: "text", spellcheck: "false", placeholder: "0, 60, 300, 900", value: (w.retry_schedule_seconds || []).join(", "), "aria-label": "Seconds between attempts" });
  const syncSchedule = () => (schedule.hidden = scheduleMode.value !== "custom");
  scheduleMode.addEventListener("change", syncSchedule);
  syncSchedule();
  const rate = h("input", { id: "wh-rate", name: "rate_limit_per_sec", type: "number", min: 1, step: 1, inputmode: "numeric", value: w.rate_limit_per_sec ?? "", placeholder: "unlimited" });
  const ordered = h("input", { id: "wh-ordered", name: "ordered", type: "checkbox", checked: !!w.ordered });
  const active = h("input", { id: "wh-active", name: "active", type: "checkbox", checked: !!w.active });
  const transform = h("textarea", { id: "wh-transform", name: "transform", rows: 4, spellcheck: "false", class: "code-input", placeholder: '{"text": "{{ event }} for {{ data.name }}"}' });
  transform.value = w.transform || "";
  const target = jsonArea("wh-target", "target", w.target, 3);

  // Templates and their live preview.
  const previewType = h("select", { id: "wh-preview-type", "aria-label": "Event type to preview" }, (types.length ? types : ["webhook.test"]).map((t) => h("option", { value: t }, t)));
  const previewOut = h("div", { id: "wh-preview", class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "The rendered message appears here."));
  const runPreview = debounce(async () => {
    const k = kind.value;
    if (!CHAT.has(k) && k !== "http" && k !== "relay") {
      fill(previewOut, h("p", { class: "muted" }, "Broker kinds send the envelope as it is."));
      return;
    }
    const req = { event_type: previewType.value || "webhook.test", kind: k };
    if (CHAT.has(k)) req.templates = templates.read();
    else req.transform = transform.value.trim() ? transform.value : null;
    fill(previewOut, loading("Rendering…"));
    try {
      const r = await post(`/api/v1/webhooks/${encodeURIComponent(id)}/preview`, req);
      fill(previewOut,
        h("p", { class: "hint" }, r.template ? ["Rendered with ", mono(r.template)] : CHAT.has(k) ? "No template matches: the built-in message." : "No transform: the envelope.", ` · ${r.kind}`),
        jsonView(r.body, "Preview of the message"),
      );
    } catch (err) {
      fill(previewOut, errorBox(err, "This would fail to render"));
    }
  }, 350);
  const templates = pairsEditor({ id: "wh-templates", name: "templates", entries: w.templates, keyLabel: "Event pattern", valueLabel: "Template", keyPlaceholder: "member.created or *", valuePlaceholder: "🎉 {{ data.name }} joined", multiline: true, addText: "Add template", onChange: runPreview });
  previewType.addEventListener("change", runPreview);
  transform.addEventListener("input", runPreview);

  const chatBox = h(
    "fieldset",
    { class: "fieldset", id: "wh-chat" },
    h("legend", {}, "Message templates"),
    h("p", { class: "hint" }, "Per event type, ", mono("prefix.*"), " or ", mono("*"), " (the most specific wins). Context: ", mono("event"), ", ", mono("timestamp"), ", ", mono("eventId"), ", ", mono("data"), ". A template starting with ", mono("{"), " is a JSON message."),
    templates.el,
  );
  const transformBox = formField("Body transform (optional)", transform, "A template whose output, JSON, is sent instead of the envelope. Signatures cover what is sent.", { class: "wide" });
  const targetBox = formField("Broker target", target, "NATS {\"subject\": …}, RabbitMQ {\"exchange\": …, \"routing_key\": …}, Redis {\"stream\": …}.");
  const previewBox = h(
    "section",
    { class: "fieldset", id: "wh-preview-box", "aria-labelledby": "wh-preview-title" },
    h("div", { class: "section-head" }, h("h2", { id: "wh-preview-title", class: "h3" }, "Live preview"), h("label", { class: "inline-label", for: "wh-preview-type" }, "Event ", previewType)),
    h("p", { class: "hint" }, "Rendered by the server from the type's catalog example, with the unsaved edits above. Nothing is sent."),
    previewOut,
  );
  const syncKind = () => {
    const k = kind.value;
    chatBox.hidden = !CHAT.has(k);
    transformBox.hidden = !(k === "http" || k === "relay");
    targetBox.hidden = !BROKER.has(k);
    previewBox.hidden = BROKER.has(k);
    runPreview();
  };
  kind.addEventListener("change", syncKind);

  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "wh-save" }, "Save changes");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "webhook-edit" },
    formField("Endpoint URL", url, BROKER.has(w.kind) ? "For a broker: its URL (a password in it is shown as ***; leave it unchanged to keep it)." : "Receives a signed POST for every matching event.", { class: "wide" }),
    h("div", { class: "form-row" }, formField("Kind", kind), h("div", { class: "form-field grow", "data-field": "description" }, h("label", { for: "wh-description" }, "Description"), description)),
    picker.el,
    formField("Payload filter (optional)", filter, ["JSON over the envelope, beside the types, e.g. ", mono('{"data.amount": {"$gte": 100}}'), ". Empty: no filter."]),
    h("fieldset", { class: "fieldset" }, h("legend", {}, "Custom headers"), h("p", { class: "hint" }, "Sent with every delivery (signature headers cannot be overridden)."), headers.el),
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "form-field", "data-field": "retry_schedule_seconds" }, h("label", { for: "wh-retry-mode" }, "Retry schedule"), h("div", { class: "inline-add" }, scheduleMode, schedule), h("p", { class: "hint" }, "Seconds between attempts, e.g. ", mono("5, 60, 300"), "; an empty custom list: no retries.")),
      formField("Rate limit (per second)", rate, "Empty: no limit of its own."),
    ),
    h(
      "div",
      { class: "form-row checks" },
      h("div", { class: "form-field check", "data-field": "ordered" }, h("label", { for: "wh-ordered" }, ordered, " Ordered delivery"), h("p", { class: "hint" }, "One at a time, in the order events were accepted.")),
      h("div", { class: "form-field check", "data-field": "active" }, h("label", { for: "wh-active" }, active, " Active"), h("p", { class: "hint" }, "Paused webhooks keep their deliveries pending.")),
    ),
    targetBox,
    transformBox,
    chatBox,
    previewBox,
    errors,
    h("div", { class: "actions" }, submit, h("a", { class: "btn", href: `#/webhooks/${encodeURIComponent(id)}` }, "Cancel")),
  );
  fill(body, h("h1", {}, "Edit webhook"), h("p", { class: "muted url" }, w.url), form);
  syncKind();
  url.focus();

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    const change = {};
    const put = (key, value, old) => {
      if (!same(value, old)) change[key] = value;
    };
    put("url", url.value.trim(), w.url);
    put("kind", kind.value, w.kind);
    put("description", description.value.trim() || null, w.description || null);
    put("events", picker.read(), w.events);
    const f = readJson(filter);
    if (f.error) return localError(form, "filter", f.error);
    put("filter", f.value, w.filter);
    put("headers", headers.read(), w.headers || {});
    if (scheduleMode.value === "custom") {
      const s = parseSchedule(schedule.value);
      if (s.error) return localError(form, "retry_schedule_seconds", s.error);
      put("retry_schedule_seconds", s.value, w.retry_schedule_seconds);
    } else {
      put("retry_schedule_seconds", null, w.retry_schedule_seconds);
    }
    const r = rate.value.trim();
    if (r && !/^\d+$/.test(r)) return localError(form, "rate_limit_per_sec", "must be a whole number");
    put("rate_limit_per_sec", r ? Number(r) : null, w.rate_limit_per_sec ?? null);
    put("ordered", ordered.checked, !!w.ordered);
    put("active", active.checked, !!w.active);
    const k = kind.value;
    if (CHAT.has(k)) put("templates", templates.read(), w.templates || {});
    if (k === "http" || k === "relay") put("transform", transform.value.trim() ? transform.value : null, w.transform || null);
    if (BROKER.has(k)) {
      const t = readJson(target);
      if (t.error) return localError(form, "target", t.error);
      put("target", t.value, w.target);
    }
    if (!Object.keys(change).length) {
      ctx.notify("Nothing changed.");
      return;
    }
    submit.disabled = true;
    submit.textContent = "Saving…";
    try {
      const updated = await patch(`/api/v1/webhooks/${encodeURIComponent(id)}`, change);
      ctx.webhooks.invalidate();
      ctx.notify(`Saved: ${Object.keys(change).join(", ")}.`, "success");
      for (const warning of updated.warnings || []) ctx.notify(`${warning.field}: ${warning.message}`, "info");
      ctx.navigate(`webhooks/${encodeURIComponent(id)}`);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Save changes";
      reportError(form, errors, err, "Could not save the webhook");
    }
  });
}

const GRACE = [
  [0, "none: the old secret stops at once"],
  [3600, "1 hour"],
  [86400, "24 hours (default)"],
  [7 * 86400, "7 days"],
  [30 * 86400, "30 days (the most)"],
];

/**
 * The "Rotate secret" dialog: pick the grace period, then the new secret is shown once in
 * `out` with a copy button. Resolves when the dialog closes.
 */
export function rotateDialog(webhook, out) {
  return new Promise((resolve) => {
    const grace = h("select", { id: "rotate-grace" }, GRACE.map(([v, t]) => h("option", { value: v, selected: v === 86400 }, t)));
    const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
    const ok = h("button", { type: "button", class: "btn btn-primary", id: "rotate-confirm" }, "Rotate secret");
    const errors = h("div", { "aria-live": "assertive" });
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "rotate-title" },
      h("h2", { id: "rotate-title" }, "Rotate the signing secret?"),
      h("p", {}, "A new secret signs every delivery from now on. During the grace period the old one signs too, so receivers can switch without failing a delivery."),
      h("div", { class: "form-field" }, h("label", { for: "rotate-grace" }, "Grace period for the old secret"), grace),
      errors,
      h("div", { class: "actions" }, cancel, ok),
    );
    const done = (v) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    cancel.addEventListener("click", () => done(null));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(null);
    });
    ok.addEventListener("click", async () => {
      ok.disabled = true;
      ok.textContent = "Rotating…";
      const secs = Number(grace.value);
      try {
        const r = await post(`/api/v1/webhooks/${encodeURIComponent(webhook.id)}/rotate-secret`, { grace_seconds: secs });
        const value = r.secret || r.public_key;
        fill(out,
          h(
            "section",
            { class: "callout callout-ok", "aria-labelledby": "rotated-title" },
            h("h2", { id: "rotated-title", tabindex: -1 }, r.secret ? "New signing secret" : "New public key"),
            h("p", {}, r.secret ? [h("strong", {}, "It is shown only this once"), " — store it now. "] : "Receivers verify v1a signatures with this key. ", secs ? `The old one keeps signing for ${GRACE.find(([v]) => v === secs)[1].replace(/ \(.*\)/, "")}.` : "The old one no longer signs."),
            h("div", { class: "secret-row" }, h("code", { class: "secret selectable", id: "rotated-secret" }, value), copyButton(value, r.secret ? "Copy secret" : "Copy key")),
          ),
        );
        done(r);
        out.querySelector("h2").focus();
      } catch (err) {
        ok.disabled = false;
        ok.textContent = "Rotate secret";
        fill(errors, errorBox(err, "Could not rotate the secret"));
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    grace.focus();
  });
}
