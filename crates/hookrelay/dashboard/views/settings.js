// Settings: the tenant's quotas and usage, API keys (shown once, revocable), dashboard users
// and roles, portal links; for a server admin, tenant management and the tenant switcher
// (X-Tenant-Id).

import { del, get, patch, post, tenantOverride } from "../api.js";
import { badge, clear, confirmDialog, copyButton, emptyState, errorBox, fill, h, loading, mono, table, timeEl } from "../dom.js";
import { clearFieldErrors, formField, localError, reportError } from "./forms.js";
import { portalLinksSection } from "./portal-links.js";

const ROLES = [
  ["admin", "admin — everything in the tenant, including keys and users"],
  ["editor", "editor — webhooks, sources, events, retries"],
  ["viewer", "viewer — read only"],
  ["publisher", "publisher — only sends events"],
];
const QUOTAS = [
  ["events_per_minute", "Events per minute"],
  ["events_per_day", "Events per day"],
  ["webhooks", "Webhooks"],
  ["delivery_rate_per_sec", "Deliveries per second"],
];

/** Whether the signed-in role may manage keys and users. */
export function canManageAccess(me) {
  return !!me && me.role === "admin";
}

function roleSelect(id) {
  return h("select", { id, name: "role" }, ROLES.map(([v, t]) => h("option", { value: v, selected: v === "viewer" }, t)));
}

function section(id, title, intro, ...children) {
  return h("section", { class: "section settings-section", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), intro ? h("p", { class: "muted" }, intro) : null, children);
}

export function page(root, route, ctx) {
  ctx.title("Settings");
  const me = ctx.me;
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Settings"), h("p", { class: "muted" }, "Tenant ", h("strong", {}, me.tenant_name), " ", mono(me.tenant_id), " · your role ", badge(`role-${me.role}`, me.role)))),
  );
  if (me.server_admin) root.append(tenantsSection(ctx));
  root.append(quotaSection(ctx));
  if (canManageAccess(me)) {
    root.append(keysSection(ctx), usersSection(ctx), portalLinksSection(ctx));
  } else {
    root.append(section("access", "Access", null, h("p", { id: "access-note" }, `API keys and users are managed by the tenant's admins; your role (${me.role}) cannot change them.`)));
  }
}

// ---- Quotas -------------------------------------------------------------------------------

function meter(used, limit) {
  if (!limit) return h("span", { class: "muted" }, `${used} used · no limit`);
  const pct = Math.min(100, Math.round((used / limit) * 100));
  return h(
    "span",
    { class: "meter-wrap" },
    h("meter", { min: 0, max: limit, value: Math.min(used, limit), high: limit * 0.8, optimum: 0, "aria-label": `${used} of ${limit}` }),
    ` ${used} of ${limit} (${pct} %)`,
  );
}

function quotaSection(ctx) {
  const body = h("div", {}, loading("Loading quotas…"));
  const el = section("quotas", "Quotas and usage", "Over a limit the API answers 429 quota_exceeded with Retry-After.", body);
  const load = async () => {
    try {
      const q = await get(`/api/v1/quotas/${encodeURIComponent(ctx.me.tenant_id)}`);
      const usage = { events_per_minute: q.usage.events_per_minute, events_per_day: q.usage.events_per_day, webhooks: q.usage.webhooks };
      const rows = QUOTAS.map(([k, label]) =>
        h("tr", { "data-id": k }, h("td", {}, label), h("td", { class: "num" }, q.limits[k] ?? h("span", { class: "muted" }, "unlimited")), h("td", {}, k in usage ? meter(usage[k], q.limits[k]) : h("span", { class: "muted" }, "enforced per second at delivery"))),
      );
      fill(body, table("Quotas", ["Quota", { text: "Limit", class: "num" }, "Current usage"], rows).el);
      if (ctx.me.server_admin) body.append(quotaForm(ctx, q.limits, load));
    } catch (err) {
      fill(body, errorBox(err, "Could not load quotas"));
    }
  };
  load();
  return el;
}

function quotaForm(ctx, limits, reload) {
  const inputs = QUOTAS.map(([k, label]) => [k, h("input", { id: `q-${k}`, name: `quotas`, type: "number", min: 0, step: 1, value: limits[k] ?? "", placeholder: "unlimited", "aria-label": label }), label]);
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn", id: "q-save" }, "Save quotas");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "quota-form" },
    h("p", { class: "label" }, "Change this tenant's limits (server admin); empty means unlimited."),
    h("div", { class: "form-row", "data-field": "quotas" }, inputs.map(([, input, label]) => h("div", { class: "form-field" }, h("label", { for: input.id }, label), input))),
    errors,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    const quotas = {};
    for (const [k, input] of inputs) {
      const v = input.value.trim();
      if (!v) continue;
      if (!/^\d+$/.test(v)) return localError(form, "quotas", `${k}: must be a whole number`);
      quotas[k] = Number(v);
    }
    submit.disabled = true;
    try {
      await patch(`/api/v1/tenants/${encodeURIComponent(ctx.me.tenant_id)}`, { quotas });
      ctx.notify("Saved the quotas.", "success");
      reload();
    } catch (err) {
      reportError(form, errors, err, "Could not save the quotas");
      submit.disabled = false;
    }
  });
  return form;
}

// ---- API keys -----------------------------------------------------------------------------

function keysSection(ctx) {
  const body = h("div", {}, loading("Loading API keys…"));
  const created = h("div", { id: "key-created" });
  const name = h("input", { id: "key-name", name: "name", type: "text", required: true, maxlength: 128, placeholder: "ci-deploy", autocomplete: "off" });
  const role = roleSelect("key-role");
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "key-create" }, "Create key");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "key-form" },
    h("div", { class: "form-row" }, formField("Name", name, "What or who uses it.", { class: "grow" }), formField("Role", role)),
    errors,
    h("div", { class: "actions" }, submit),
  );
  let tbody = null;
  const row = (k) =>
    h(
      "tr",
      { "data-id": k.id },
      h("td", {}, k.name),
      h("td", {}, mono(k.id)),
      h("td", {}, badge(`role-${k.role}`, k.role), k.server_admin ? [" ", badge("role-admin", "server admin")] : null),
      h("td", { class: "nowrap opt" }, timeEl(k.created_at)),
      h("td", {}, ctx.me.principal && ctx.me.principal.id === k.id ? h("span", { class: "muted" }, "in use by you") : revokeButton(ctx, k, body)),
    );
  const load = async () => {
    try {
      const page = await get("/api/v1/keys", { limit: 1000 });
      if (!page.data.length) {
        fill(body, emptyState("No API keys.", "Programs use an API key to send events and manage webhooks."));
        tbody = null;
        return;
      }
      const t = table("API keys", ["Name", "Id", "Role", { text: "Created", class: "opt" }, "Actions"], page.data.map(row));
      tbody = t.tbody;
      fill(body, t.el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load API keys"));
    }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    if (!name.value.trim()) return localError(form, "name", "is required");
    submit.disabled = true;
    try {
      const k = await post("/api/v1/keys", { name: name.value.trim(), role: role.value });
      name.value = "";
      fill(created,
        h(
          "div",
          { class: "callout callout-ok", role: "status" },
          h("p", { class: "callout-title" }, `Key ${k.name} created (${k.role})`),
          h("p", {}, h("strong", {}, "It is shown only this once"), " — store it now; only its hash is kept."),
          h("div", { class: "secret-row" }, h("code", { class: "secret selectable", id: "new-key" }, k.key), copyButton(k.key, "Copy key")),
        ),
      );
      if (tbody) tbody.prepend(row(k));
      else load();
    } catch (err) {
      reportError(form, errors, err, "Could not create the key");
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return section("keys", "API keys", "For programs: a key acts with its role in this tenant.", form, created, body);
}

function revokeButton(ctx, k, box) {
  const btn = h("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "revoke" }, "Revoke");
  btn.addEventListener("click", async () => {
    const ok = await confirmDialog({ title: `Revoke the key ${k.name}?`, text: "Programs using it are refused at once. This cannot be undone.", confirm: "Revoke key", danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/keys/${encodeURIComponent(k.id)}`);
      btn.closest("tr").remove();
      ctx.notify(`Revoked the key ${k.name}.`, "success");
    } catch (err) {
      box.prepend(errorBox(err, "Could not revoke the key"));
    }
  });
  return btn;
}

// ---- Users --------------------------------------------------------------------------------

function usersSection(ctx) {
  const body = h("div", {}, loading("Loading users…"));
  const email = h("input", { id: "user-email", name: "email", type: "email", required: true, autocomplete: "off", spellcheck: "false", placeholder: "ada@example.com" });
  const password = h("input", { id: "user-password", name: "password", type: "password", required: true, autocomplete: "new-password", minlength: 12 });
  const role = roleSelect("user-role");
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "user-create" }, "Add user");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "user-form" },
    h("div", { class: "form-row" }, formField("Email", email, null, { class: "grow" }), formField("Password", password, "At least 12 characters; tell it to them privately."), formField("Role", role)),
    errors,
    h("div", { class: "actions" }, submit),
  );
  let tbody = null;
  const self = ctx.me.principal && ctx.me.principal.kind === "user" ? ctx.me.principal.id : null;
  const row = (u) => {
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "delete-user", disabled: u.id === self, title: u.id === self ? "You cannot remove yourself" : null }, "Remove");
    remove.addEventListener("click", async () => {
      const ok = await confirmDialog({ title: `Remove ${u.email}?`, text: "Their sessions end at once and they can no longer sign in.", confirm: "Remove user", danger: true });
      if (!ok) return;
      try {
        await del(`/api/v1/users/${encodeURIComponent(u.id)}`);
        remove.closest("tr").remove();
        ctx.notify(`Removed ${u.email}.`, "success");
      } catch (err) {
        body.prepend(errorBox(err, "Could not remove the user"));
      }
    });
    return h(
      "tr",
      { "data-id": u.id },
      h("td", {}, u.email, u.id === self ? h("span", { class: "muted" }, " (you)") : null),
      h("td", {}, badge(`role-${u.role}`, u.role), u.server_admin ? [" ", badge("role-admin", "server admin")] : null),
      h("td", { class: "nowrap opt" }, timeEl(u.created_at)),
      h("td", {}, remove),
    );
  };
  const load = async () => {
    try {
      const page = await get("/api/v1/users", { limit: 1000 });
      if (!page.data.length) {
        fill(body, emptyState("No users in this tenant.", "Add people who sign in to this dashboard."));
        tbody = null;
        return;
      }
      const t = table("Users", ["Email", "Role", { text: "Created", class: "opt" }, "Actions"], page.data.map(row));
      tbody = t.tbody;
      fill(body, t.el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load users"));
    }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    submit.disabled = true;
    try {
      const u = await post("/api/v1/users", { email: email.value.trim(), password: password.value, role: role.value });
      email.value = "";
      password.value = "";
      ctx.notify(`Added ${u.email} as ${u.role}.`, "success");
      if (tbody) tbody.prepend(row(u));
      else load();
    } catch (err) {
      reportError(form, errors, err, "Could not add the user");
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return section("users", "Users and roles", "People who sign in to this dashboard, each with one role.", form, body);
}

// ---- Tenants (server admin) ---------------------------------------------------------------

function tenantsSection(ctx) {
  const body = h("div", {}, loading("Loading tenants…"));
  const switcher = h("select", { id: "tenant-switch", "aria-label": "Tenant to act on" });
  const name = h("input", { id: "tenant-name", name: "name", type: "text", required: true, maxlength: 64, spellcheck: "false", autocomplete: "off", placeholder: "acme" });
  const retention = h("input", { id: "tenant-retention", name: "retention_days", type: "number", min: 1, max: 3650, step: 1, placeholder: "server default" });
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn", id: "tenant-create" }, "Create tenant");
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "tenant-form" },
    h("div", { class: "form-row" }, formField("New tenant name", name, "a-z, 0-9, - and _.", { class: "grow" }), formField("Retention (days)", retention)),
    errors,
    h("div", { class: "actions" }, submit),
  );
  const load = async () => {
    try {
      const page = await get("/api/v1/tenants", { limit: 1000 });
      fill(switcher, page.data.map((t) => h("option", { value: t.id, selected: t.id === ctx.me.tenant_id }, `${t.name} (${t.id})`)));
      const rows = page.data.map((t) =>
        h(
          "tr",
          { "data-id": t.id },
          h("td", {}, h("strong", {}, t.name), t.id === ctx.me.tenant_id ? h("span", { class: "muted" }, " (acting on)") : null),
          h("td", {}, mono(t.id)),
          h("td", { class: "num" }, `${t.retention_days} d`),
          h("td", {}, Object.keys(t.quotas || {}).length ? Object.entries(t.quotas).map(([k, v]) => h("div", { class: "small" }, `${k} ${v}`)) : h("span", { class: "muted" }, "defaults")),
          h("td", {}, t.id === ctx.me.tenant_id ? null : switchButton(ctx, t)),
        ),
      );
      fill(body, table("Tenants", ["Name", "Id", { text: "Retention", class: "num" }, "Quotas", "Actions"], rows).el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load tenants"));
    }
  };
  switcher.addEventListener("change", () => ctx.switchTenant(switcher.value));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    const req = { name: name.value.trim() };
    const r = retention.value.trim();
    if (r) {
      if (!/^\d+$/.test(r)) return localError(form, "retention_days", "must be a whole number of days");
      req.retention_days = Number(r);
    }
    submit.disabled = true;
    try {
      const t = await post("/api/v1/tenants", req);
      name.value = "";
      retention.value = "";
      ctx.notify(`Created the tenant ${t.name}.`, "success");
      load();
    } catch (err) {
      reportError(form, errors, err, "Could not create the tenant");
    } finally {
      submit.disabled = false;
    }
  });
  load();
  return section(
    "tenants",
    "Tenants",
    "As a server admin you act on one tenant at a time (the X-Tenant-Id header); everything else on these pages is that tenant's.",
    h("div", { class: "form-field" }, h("label", { for: "tenant-switch" }, "Acting on tenant"), switcher, tenantOverride() ? h("p", { class: "hint" }, "Chosen in this tab; ", h("button", { type: "button", class: "btn btn-small", onclick: () => ctx.switchTenant(null) }, "back to your own tenant")) : null),
    form,
    body,
  );
}

function switchButton(ctx, t) {
  const btn = h("button", { type: "button", class: "btn btn-small", "data-action": "switch-tenant" }, "Act on this tenant");
  btn.addEventListener("click", () => ctx.switchTenant(t.id));
  return btn;
}
