// Creating and editing inbound sources, and each provider's setup steps: where the ingest URL
// and the secret go in GitHub, Stripe, a Standard Webhooks sender and the others.

import { get, patch, post } from "../api.js";
import { clear, copyButton, errorBox, fill, h, link, loading, mono } from "../dom.js";
import { clearFieldErrors, formField, jsonArea, localError, readJson, reportError } from "./forms.js";

export const PROVIDERS = [
  ["github", "GitHub"],
  ["stripe", "Stripe"],
  ["standard", "Standard Webhooks (Svix, …)"],
  ["hmac", "Generic HMAC"],
  ["paypal", "PayPal"],
  ["none", "None (unsigned)"],
];
const SIGNED = new Set(["github", "stripe", "standard", "hmac"]);
const CONFIG_HINT = {
  github: "Nothing to set.",
  stripe: "Nothing to set.",
  standard: "Nothing to set.",
  hmac: '{"header": "X-Signature", "encoding": "hex", "prefix": "sha256=", "type_path": "event"}',
  paypal: '{"webhook_id": "WH-…"} (from the PayPal app\'s webhook)',
  none: '{"type_path": "event"} or {"type_header": "X-Event"} (optional)',
};

/** A fresh secret the provider is given (or, for Stripe, replaced by Stripe's own). */
export function generateSecret(provider) {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  if (provider === "standard") return `whsec_${btoa(String.fromCharCode(...bytes))}`;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** What to do at the provider, step by step, with the URL and secret to paste. */
export function setupSteps(source, secret) {
  const url = [mono(source.ingest_url, { class: "mono url" }), " ", copyButton(source.ingest_url, "Copy URL")];
  const secretText = secret ? [mono(secret, { class: "mono selectable" }), " ", copyButton(secret, "Copy secret")] : "the secret you set on this source";
  const steps = {
    github: [
      ["In the repository (or organisation) open ", h("strong", {}, "Settings › Webhooks › Add webhook"), "."],
      [h("strong", {}, "Payload URL"), ": ", url],
      [h("strong", {}, "Content type"), ": ", mono("application/json"), "."],
      [h("strong", {}, "Secret"), ": ", secretText, "."],
      ["Choose the events, keep ", h("strong", {}, "Active"), " ticked, and ", h("strong", {}, "Add webhook"), ". GitHub sends a ", mono("ping"), " at once: it appears below as ", mono("github.ping"), "."],
    ],
    stripe: [
      ["In the Stripe Dashboard open ", h("strong", {}, "Developers › Webhooks › Add endpoint"), "."],
      [h("strong", {}, "Endpoint URL"), ": ", url],
      ["Select the events to send, then ", h("strong", {}, "Add endpoint"), "."],
      ["On the endpoint's page, ", h("strong", {}, "Reveal"), " the ", h("strong", {}, "Signing secret"), " (", mono("whsec_…"), ") and paste it here with ", h("strong", {}, "Edit › Secret"), ": Stripe makes the secret, not you."],
      ["Send a test event from Stripe: it appears below as ", mono("stripe.<type>"), "."],
    ],
    standard: [
      ["In the sender's endpoint settings (a Svix app portal: ", h("strong", {}, "Endpoints › Add endpoint"), ") set the ", h("strong", {}, "URL"), ": ", url],
      [h("strong", {}, "Signing secret"), ": ", secretText, " — or paste the sender's own ", mono("whsec_…"), " here with Edit."],
      ["The event type is the body's ", mono("type"), "; requests are deduplicated on ", mono("webhook-id"), "."],
    ],
    hmac: [
      ["Point the sender at ", url],
      ["Give it ", secretText, " and make it sign the raw body with HMAC in the header this source names (", mono(source.config && source.config.header ? source.config.header : "see Settings"), ")."],
    ],
    paypal: [
      ["In the PayPal developer dashboard open your app › ", h("strong", {}, "Webhooks › Add webhook"), " with URL ", url],
      ["Copy the webhook's ", h("strong", {}, "ID"), " into this source's settings as ", mono("webhook_id"), "."],
    ],
    none: [["Send requests to ", url], ["Nothing checks who sent them: use this only on a trusted network."]],
  };
  return h(
    "section",
    { class: "section setup", id: "setup-steps", "aria-labelledby": "setup-title" },
    h("h2", { id: "setup-title" }, "Set up ", (PROVIDERS.find(([p]) => p === source.provider) || [null, source.provider])[1]),
    h("ol", { class: "steps" }, (steps[source.provider] || steps.none).map((s) => h("li", {}, s))),
  );
}

function sourceForm({ source, onSubmit, submitText }) {
  const editing = !!source;
  const name = h("input", { id: "src-name", name: "name", type: "text", required: true, spellcheck: "false", autocomplete: "off", maxlength: 64, placeholder: "gh-main", value: source ? source.name : "" });
  const provider = h("select", { id: "src-provider", name: "provider" }, PROVIDERS.map(([v, t]) => h("option", { value: v, selected: source ? source.provider === v : v === "github" }, t)));
  const secret = h("input", { id: "src-secret", name: "secret", type: "text", spellcheck: "false", autocomplete: "off", class: "mono", placeholder: editing ? "leave empty to keep the current secret" : "" });
  const generate = h("button", { type: "button", class: "btn btn-small", id: "src-generate" }, "Generate");
  generate.addEventListener("click", () => {
    secret.value = generateSecret(provider.value);
    secret.focus();
  });
  const config = jsonArea("src-config", "config", source && Object.keys(source.config || {}).length ? source.config : null, 3);
  const configHint = h("p", { class: "hint", id: "src-config-hint" });
  const rate = h("input", { id: "src-rate", name: "rate_limit_per_min", type: "number", min: 1, step: 1, value: source ? source.rate_limit_per_min : 100 });
  const active = h("input", { id: "src-active", name: "active", type: "checkbox", checked: source ? source.active : true });
  const secretBox = h("div", { class: "form-field grow", "data-field": "secret" }, h("label", { for: "src-secret" }, "Secret"), h("div", { class: "inline-add" }, secret, generate), h("p", { class: "hint", id: "src-secret-hint" }));
  const sync = () => {
    const p = provider.value;
    secretBox.hidden = !SIGNED.has(p);
    generate.hidden = p === "stripe";
    fill(secretBox.querySelector(".hint"), p === "stripe" ? "Paste the endpoint's signing secret from Stripe (whsec_…)." : p === "standard" ? "whsec_ + base64; Generate makes one to give the sender." : "The shared secret the sender signs with; Generate makes a strong one.");
    fill(configHint, "Provider settings (JSON). ", CONFIG_HINT[p]);
  };
  provider.addEventListener("change", sync);
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "src-save" }, submitText);
  const configField = h("div", { class: "form-field", "data-field": "config" }, h("label", { for: "src-config" }, "Provider settings"), config, configHint);
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "source-form" },
    h("div", { class: "form-row" }, formField("Name", name, ["The ingest URL is ", mono("/ingest/<name>"), ": a-z, 0-9, - and _."], { class: "grow" }), formField("Provider", provider)),
    secretBox,
    configField,
    h("div", { class: "form-row" }, formField("Rate limit (requests per minute)", rate), h("div", { class: "form-field check", "data-field": "active" }, h("label", { for: "src-active" }, active, " Active"), h("p", { class: "hint" }, "A paused source answers 503 (and logs the request)."))),
    errors,
    h("div", { class: "actions" }, submit, h("a", { class: "btn", href: source ? `#/sources/${encodeURIComponent(source.id)}` : "#/sources" }, "Cancel")),
  );
  sync();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    const c = readJson(config);
    if (c.error) return localError(form, "config", c.error);
    const r = rate.value.trim();
    if (!/^\d+$/.test(r)) return localError(form, "rate_limit_per_min", "must be a whole number");
    const body = { name: name.value.trim(), provider: provider.value, config: c.value || {}, rate_limit_per_min: Number(r), active: active.checked };
    if (SIGNED.has(provider.value) && secret.value.trim()) body.secret = secret.value.trim();
    // Switching to a provider that takes no secret clears the stored one, as the API requires.
    if (editing && !SIGNED.has(provider.value) && SIGNED.has(source.provider)) body.secret = null;
    submit.disabled = true;
    try {
      await onSubmit(body, secret.value.trim());
    } catch (err) {
      reportError(form, errors, err, editing ? "Could not save the source" : "Could not create the source");
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => name.focus() };
}

/** `#/sources/new`. */
export function create(root, route, ctx) {
  ctx.title("New source");
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/sources" }, "Sources"), " › new"), h("h1", {}, "New source"));
  if (!ctx.canWrite) {
    root.append(h("p", {}, `Your role (${ctx.me.role}) can look at sources but not create them.`));
    return;
  }
  const result = h("div");
  const { form, focus } = sourceForm({
    submitText: "Create source",
    onSubmit: async (body, typedSecret) => {
      const s = await post("/api/v1/sources", body);
      form.remove();
      const secret = s.secret || typedSecret || null;
      fill(result,
        h(
          "section",
          { class: "callout callout-ok", "aria-labelledby": "src-created" },
          h("h2", { id: "src-created", tabindex: -1 }, "Source created"),
          h("p", {}, "Requests to this URL are verified, logged and turned into events:"),
          h("div", { class: "secret-row" }, mono(s.ingest_url, { class: "mono url", id: "src-ingest-url" }), copyButton(s.ingest_url, "Copy URL")),
          secret ? h("p", {}, "The secret is ", h("strong", {}, "not shown again"), " after you leave this page.") : null,
        ),
        setupSteps(s, secret),
        h("div", { class: "actions" }, link(["sources", s.id], "Open the source and its requests log", { class: "btn btn-primary", id: "open-source" }), h("a", { class: "btn", href: "#/sources" }, "Back to sources")),
      );
      result.querySelector("h2").focus();
    },
  });
  root.append(form, result);
  focus();
}

/** `#/sources/src_…/edit`. */
export function edit(root, route, ctx) {
  const id = route.params[0];
  ctx.title(`Edit source ${id}`);
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/sources" }, "Sources"), " › ", h("a", { href: `#/sources/${encodeURIComponent(id)}` }, mono(id)), " › edit"));
  if (!ctx.canWrite) {
    root.append(h("h1", {}, "Edit source"), h("p", {}, `Your role (${ctx.me.role}) can look at sources but not change them.`));
    return;
  }
  const body = h("div", {}, loading("Loading the source…"));
  root.append(body);
  (async () => {
    let s;
    try {
      s = await get(`/api/v1/sources/${encodeURIComponent(id)}`);
    } catch (err) {
      fill(body, errorBox(err, err.status === 404 ? "No such source" : "Could not load the source"));
      return;
    }
    const { form, focus } = sourceForm({
      source: s,
      submitText: "Save changes",
      onSubmit: async (change) => {
        await patch(`/api/v1/sources/${encodeURIComponent(id)}`, change);
        ctx.notify("Saved the source.", "success");
        ctx.navigate(`sources/${encodeURIComponent(id)}`);
      },
    });
    fill(body, h("h1", {}, "Edit ", s.name), form);
    focus();
  })();
}
