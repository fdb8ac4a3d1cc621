// Replay dialogs: one event to every matching webhook or to chosen ones (its page), and one
// webhook's window of events — what it missed, what failed, or all (the webhook's page).

import { post } from "../api.js";
import { errorBox, fill, h, mono } from "../dom.js";
import { fromLocalInput, toLocalInput } from "./deliveries.js";
import { clearFieldErrors, showFieldErrors } from "./forms.js";
import { patternMatches } from "./webhook-edit.js";

/** Whether a webhook's event patterns take `type` (its payload filter is not looked at). */
export function patternsTake(webhook, type) {
  const events = webhook.events || [];
  return events.length === 0 ? !type.startsWith("hookrelay.") : events.some((p) => patternMatches(p, type));
}

/**
 * A modal `<dialog>` holding `form`; `done(v)` closes it and resolves the promise with `v`.
 * Escape and Cancel resolve null.
 */
function modal(id, title, form, focus) {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  const dialog = h("dialog", { class: "dialog dialog-wide", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), form);
  const done = (v) => {
    dialog.close();
    dialog.remove();
    resolve(v);
  };
  dialog.addEventListener("cancel", (e) => {
    e.preventDefault();
    done(null);
  });
  document.body.append(dialog);
  dialog.showModal();
  (focus || form.querySelector("input, select, button")).focus();
  return { promise, done, dialog };
}

/**
 * Replays `event` (`POST /api/v1/events/{id}/replay`): to every webhook whose filters match it
 * now, or to the checked ones. Resolves the API's answer `{deliveries, delivery_ids}`, or null.
 */
export async function replayEventDialog(ctx, event) {
  const hooks = [...(await ctx.webhooks.load(true).catch(() => ctx.webhooks.map)).values()].sort((a, b) => a.url.localeCompare(b.url));
  const matching = h("input", { type: "radio", name: "replay-target", id: "replay-matching", value: "matching", checked: true });
  const chosen = h("input", { type: "radio", name: "replay-target", id: "replay-chosen", value: "chosen" });
  const boxes = hooks.map((w, i) => {
    const box = h("input", { type: "checkbox", id: `replay-wh-${i}`, value: w.id, "data-webhook": w.id });
    // Ticking a webhook means "only these".
    box.addEventListener("change", () => {
      if (box.checked) chosen.checked = true;
      clearFieldErrors(form);
    });
    const takes = patternsTake(w, event.type);
    return h(
      "li",
      { class: "check-row", "data-field": `webhook-${w.id}` },
      h(
        "label",
        { for: box.id },
        box,
        h("span", { class: "url" }, w.url),
        h("span", { class: "muted small" }, [w.description, takes ? `takes ${event.type}` : `not subscribed to ${event.type}`, w.active ? null : "paused"].filter(Boolean).join(" · ")),
      ),
    );
  });
  const list = h(
    "fieldset",
    { class: "fieldset", "data-field": "webhook_ids" },
    h("legend", {}, "Webhooks"),
    hooks.length ? h("ul", { class: "check-list", id: "replay-webhooks" }, boxes) : h("p", { class: "muted" }, "This tenant has no webhooks."),
  );
  const errors = h("div", { "aria-live": "assertive" });
  const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "replay-confirm" }, "Replay");
  const form = h(
    "form",
    { novalidate: true },
    h("p", {}, "New deliveries of ", mono(event.id), ", due now, each with a new delivery id. Its existing deliveries stay as they are."),
    h(
      "fieldset",
      { class: "fieldset" },
      h("legend", {}, "Deliver to"),
      h("div", { class: "form-field check" }, h("label", { for: "replay-matching" }, matching, "Every webhook whose filters match it now")),
      h("div", { class: "form-field check" }, h("label", { for: "replay-chosen" }, chosen, "Only the webhooks ticked below, whatever their filters")),
    ),
    list,
    errors,
    h("div", { class: "actions" }, cancel, submit),
  );
  const { promise, done } = modal("replay-event", "Replay this event", form, matching);
  cancel.addEventListener("click", () => done(null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    fill(errors);
    const ids = boxes.map((li) => li.querySelector("input")).filter((b) => b.checked).map((b) => b.value);
    if (chosen.checked && !ids.length) {
      showFieldErrors(form, { details: [{ field: "webhook_ids", message: "Tick at least one webhook, or replay to every matching one." }] });
      return;
    }
    submit.disabled = true;
    submit.textContent = "Replaying…";
    try {
      const res = await post(`/api/v1/events/${encodeURIComponent(event.id)}/replay`, chosen.checked ? { webhook_ids: ids } : {});
      done(res);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Replay";
      fill(errors, errorBox(err, "Could not replay"));
      // `webhook_ids[i]` names the i-th ticked webhook: show it on that webhook's row.
      const details = (err.details || []).map((d) => {
        const m = /^webhook_ids\[(\d+)\]$/.exec(d.field || "");
        return m && ids[Number(m[1])] ? { ...d, field: `webhook-${ids[Number(m[1])]}` } : d;
      });
      showFieldErrors(form, { details });
    }
  });
  return promise;
}

export const REPLAY_MODES = [
  ["missing", "Missed events", "Events of the window it matches now but never had a delivery of: it did not exist yet, filtered them out, or they were sent before it was changed."],
  ["failed", "Failed deliveries", "Events whose delivery to it failed, and none has since succeeded or is pending."],
  ["all", "Everything", "Every event of the window it matches now, delivered again even if it already succeeded."],
];

/**
 * Replays a window of events to `webhook` (`POST /api/v1/webhooks/{id}/replay`). Resolves
 * `{queued}`, or null when cancelled.
 */
export function replayWebhookDialog(webhook) {
  const since = h("input", { id: "replay-since", name: "since", type: "datetime-local", step: 1, required: true, value: toLocalInput(new Date(Date.now() - 3_600_000).toISOString()) });
  const until = h("input", { id: "replay-until", name: "until", type: "datetime-local", step: 1 });
  const mode = h("select", { id: "replay-mode", name: "mode", "aria-describedby": "replay-mode-hint" }, REPLAY_MODES.map(([v, t]) => h("option", { value: v }, t)));
  const modeHint = h("p", { class: "hint", id: "replay-mode-hint" });
  const showHint = () => fill(modeHint, REPLAY_MODES.find(([v]) => v === mode.value)[2]);
  mode.addEventListener("change", showHint);
  showHint();
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const errors = h("div", { "aria-live": "assertive" });
  const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "replay-webhook-confirm" }, "Replay");
  const form = h(
    "form",
    { novalidate: true },
    h("p", {}, "Delivers events accepted in a time window to ", h("strong", { class: "url" }, webhook.url), " again, as new deliveries due now (its event patterns and payload filter as they are now decide what it takes)."),
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "form-field", "data-field": "since" }, h("label", { for: "replay-since" }, "Since"), since),
      h("div", { class: "form-field", "data-field": "until" }, h("label", { for: "replay-until" }, "Until (optional)"), until),
    ),
    h("p", { class: "hint" }, `Times in ${zone}. Until left empty means now.`),
    h("div", { class: "form-field", "data-field": "mode" }, h("label", { for: "replay-mode" }, "What to replay"), mode, modeHint),
    errors,
    h("div", { class: "actions" }, cancel, submit),
  );
  const { promise, done } = modal("replay-webhook", "Replay to this webhook", form, since);
  cancel.addEventListener("click", () => done(null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    fill(errors);
    const from = fromLocalInput(since.value);
    const to = fromLocalInput(until.value);
    const local = [];
    if (!from) local.push({ field: "since", message: from === null ? "is not a date and time" : "is required" });
    if (to === null) local.push({ field: "until", message: "is not a date and time" });
    if (from && to && to < from) local.push({ field: "until", message: "must not be before Since" });
    if (local.length) {
      showFieldErrors(form, { details: local });
      return;
    }
    submit.disabled = true;
    submit.textContent = "Replaying…";
    try {
      const body = { since: from, mode: mode.value };
      if (to) body.until = to;
      done(await post(`/api/v1/webhooks/${encodeURIComponent(webhook.id)}/replay`, body));
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Replay";
      fill(errors, errorBox(err, "Could not replay"));
      showFieldErrors(form, err);
    }
  });
  return promise;
}
