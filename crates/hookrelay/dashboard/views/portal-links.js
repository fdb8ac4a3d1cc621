// Settings › Portal links: a tenant admin makes a link that opens this tenant's deliveries,
// dead letters and webhooks for someone without an account (shown once), lists and revokes them.

import { del, get, post } from "../api.js";
import { badge, clear, confirmDialog, copyButton, emptyState, errorBox, fill, h, loading, mono, table, timeEl } from "../dom.js";
import { clearFieldErrors, formField, reportError } from "./forms.js";

const LIFETIMES = [
  [3600, "1 hour"],
  [86_400, "1 day"],
  [7 * 86_400, "7 days"],
  [30 * 86_400, "30 days"],
];

export function portalLinksSection(ctx) {
  const body = h("div", {}, loading("Loading portal links…"));
  const created = h("div", { id: "portal-created" });
  const role = h("select", { id: "portal-role", name: "role" }, h("option", { value: "viewer", selected: true }, "viewer — read only"), h("option", { value: "editor" }, "editor — manage webhooks, retry deliveries"));
  const lifetime = h("select", { id: "portal-lifetime", name: "expires_in_seconds" }, LIFETIMES.map(([v, t]) => h("option", { value: String(v) }, t)));
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "portal-create" }, "Create link");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "portal-form" },
    h("div", { class: "form-row" }, formField("Role", role), formField("Works for", lifetime)),
    errors,
    h("div", { class: "actions" }, submit),
  );
  const row = (l) =>
    h(
      "tr",
      { "data-id": l.id },
      h("td", {}, mono(l.id)),
      h("td", {}, badge(`role-${l.role}`, l.role)),
      h("td", { class: "nowrap opt" }, timeEl(l.created_at)),
      h("td", { class: "nowrap" }, timeEl(l.expires_at)),
      h("td", {}, revokeButton(ctx, l, body)),
    );
  const load = async () => {
    try {
      const res = await get("/api/v1/portal-links");
      if (!res.data.length) return fill(body, emptyState("No working portal links.", "A link lets a customer manage their own endpoints without an account."));
      fill(body, table("Portal links", ["Id", "Role", { text: "Created", class: "opt" }, "Expires", "Actions"], res.data.map(row)).el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load portal links"));
    }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    submit.disabled = true;
    try {
      const l = await post("/api/v1/portal-links", { role: role.value, expires_in_seconds: Number(lifetime.value) });
      const url = new URL(l.url, location.origin).href;
      fill(
        created,
        h(
          "div",
          { class: "callout callout-ok", role: "status" },
          h("p", { class: "callout-title" }, `Portal link created (${l.role})`),
          h("p", {}, h("strong", {}, "It is shown only this once"), " — it expires ", timeEl(l.expires_at), " unless revoked first; whoever has it acts with its role."),
          h("div", { class: "secret-row" }, h("code", { class: "secret selectable", id: "new-portal-link" }, url), copyButton(url, "Copy link")),
        ),
      );
      load();
    } catch (err) {
      reportError(form, errors, err, "Could not create the link");
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return h(
    "section",
    { class: "section settings-section", id: "portal-links", "aria-labelledby": "portal-links-title" },
    h("h2", { id: "portal-links-title" }, "Portal links"),
    h("p", { class: "muted" }, "For your customers: a link opens this tenant's webhooks, deliveries and dead letters, nothing else, without an account."),
    form,
    created,
    body,
  );
}

function revokeButton(ctx, l, box) {
  const btn = h("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "revoke" }, "Revoke");
  btn.addEventListener("click", async () => {
    const ok = await confirmDialog({ title: "Revoke this portal link?", text: "Whoever has it is refused at once. This cannot be undone.", confirm: "Revoke link", danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/portal-links/${encodeURIComponent(l.id)}`);
      btn.closest("tr").remove();
      ctx.notify("Revoked the portal link.", "success");
    } catch (err) {
      box.prepend(errorBox(err, "Could not revoke the link"));
    }
  });
  return btn;
}
