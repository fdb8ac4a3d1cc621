// The dashboard's entry point: sign-in, the page shell (navigation, who is signed in, the live
// indicator), hash routing so a reload keeps the place, and the shared context views get.

import { api, canRead, canWrite, get, onUnauthorized, post, session, setTenantOverride, tenantHeaders } from "./api.js";
import { badge, clear, duration, errorBox, fill, h, loading, tickTimes } from "./dom.js";
import { inNav, inPortal, routeAllowed, takePortalToken } from "./portal.js";
import { LiveStream } from "./stream.js";
import * as deliveries from "./views/deliveries.js";
import * as dlq from "./views/dlq.js";
import * as events from "./views/events.js";
import * as overview from "./views/overview.js";
import * as catalog from "./views/event-types.js";
import * as settings from "./views/settings.js";
import * as sourceEdit from "./views/source-edit.js";
import * as webhookEdit from "./views/webhook-edit.js";
import * as sources from "./views/sources.js";
import * as webhooks from "./views/webhooks.js";

const app = document.getElementById("app");
const notices = document.getElementById("notices");

/** Sections in the navigation, in order. */
const SECTIONS = [
  ["overview", "Overview"],
  ["deliveries", "Deliveries"],
  ["dlq", "Dead letters"],
  ["events", "Events"],
  ["webhooks", "Webhooks"],
  ["sources", "Sources"],
  ["event-types", "Event types"],
  ["settings", "Settings"],
];

/** Routes: path segments → view. A view renders into `root` and may return a cleanup. */
const ROUTES = [
  [["overview"], overview.page],
  [["deliveries"], deliveries.list],
  [["deliveries", ":id"], deliveries.detail],
  [["dlq"], dlq.list],
  [["events"], events.list],
  [["events", ":id"], events.detail],
  [["webhooks"], webhooks.list],
  [["webhooks", "new"], webhooks.create],
  [["webhooks", ":id"], webhooks.detail],
  [["webhooks", ":id", "edit"], webhookEdit.edit],
  [["sources"], sources.list],
  [["sources", "new"], sourceEdit.create],
  [["sources", ":id"], sources.detail],
  [["sources", ":id", "edit"], sourceEdit.edit],
  [["event-types"], catalog.list],
  [["event-types", "new"], catalog.create],
  [["event-types", ":id"], catalog.detail],
  [["settings"], settings.page],
];

let me = null;
let stream = null;
let shell = null;
let current = null;
let signingOut = false;

// ---- Notices ------------------------------------------------------------------------------

/** A short message in the corner, announced to screen readers. Errors stay until dismissed. */
export function notify(text, kind = "info") {
  const close = h("button", { type: "button", class: "notice-close", "aria-label": "Dismiss" }, "×");
  const el = h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, h("span", {}, text), close);
  close.addEventListener("click", () => el.remove());
  notices.append(el);
  if (kind !== "error") setTimeout(() => el.remove(), 8000);
}

// ---- Webhook names ------------------------------------------------------------------------

/** The tenant's webhooks by id, so lists can show a URL instead of `wh_…`. */
class WebhookCache {
  constructor() {
    this.map = new Map();
    this.loadedAt = 0;
    this.pending = null;
  }
  async load(force = false) {
    if (!force && Date.now() - this.loadedAt < 30_000) return this.map;
    if (this.pending) return this.pending;
    this.pending = (async () => {
      const map = new Map();
      let cursor;
      // Ten pages of 1,000 is far beyond a sane tenant; past that, ids are shown instead.
      for (let page = 0; page < 10; page++) {
        const res = await get("/api/v1/webhooks", { limit: 1000, cursor });
        for (const w of res.data) map.set(w.id, w);
        cursor = res.next_cursor;
        if (!cursor) break;
      }
      this.map = map;
      this.loadedAt = Date.now();
      return map;
    })().finally(() => (this.pending = null));
    return this.pending;
  }
  get(id) {
    return this.map.get(id);
  }
  label(id) {
    const w = this.map.get(id);
    return w ? w.url : id;
  }
  invalidate() {
    this.loadedAt = 0;
  }
}

// ---- Routing ------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, qs = ""] = raw.split("?");
  const segments = path
    .split("/")
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segments, query: Object.fromEntries(new URLSearchParams(qs)) };
}

function match(segments) {
  for (const [pattern, view] of ROUTES) {
    if (pattern.length !== segments.length || !routeAllowed(pattern[0])) continue;
    const params = [];
    const ok = pattern.every((p, i) => {
      if (p.startsWith(":")) {
        params.push(segments[i]);
        return true;
      }
      return p === segments[i];
    });
    if (ok) return { view, params };
  }
  return null;
}

/** `#/deliveries?status=failed` from a path and filters (empty values left out). */
export function href(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${path}${s ? `?${s}` : ""}`;
}

let lastPath = null;

function route() {
  if (!me || !shell) return;
  const { segments, query } = parseHash();
  // A filter change re-renders the same page: keep focus on the control that changed it.
  const path = segments.join("/");
  const keepFocus = path === lastPath && document.activeElement && document.activeElement.id ? document.activeElement.id : null;
  lastPath = path;
  if (segments.length === 0) {
    // The portal has no overview: its landing is the deliveries list.
    location.replace(inPortal ? "#/deliveries" : "#/overview");
    return;
  }
  if (current && current.cleanup) {
    try {
      current.cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  const root = h("div", { class: "view" });
  fill(shell.main, root);
  for (const a of shell.nav.querySelectorAll("a")) {
    if (a.dataset.section === segments[0]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const found = match(segments);
  const ctx = makeContext();
  current = { cleanup: null };
  if (!found) {
    ctx.title("Not found");
    root.append(
      h("h1", {}, "Page not found"),
      h("p", {}, "There is nothing at this address. "),
      h("p", {}, h("a", { href: "#/deliveries" }, "Go to deliveries")),
    );
  } else {
    const cleanups = [];
    ctx.onCleanup = (fn) => cleanups.push(fn);
    current.cleanup = () => cleanups.forEach((fn) => fn());
    const result = found.view(root, { params: found.params, query }, ctx);
    if (typeof result === "function") cleanups.push(result);
  }
  const again = keepFocus && document.getElementById(keepFocus);
  if (again) {
    again.focus();
  } else {
    // Move focus to the new page for keyboard and screen-reader users, without scrolling jumps.
    shell.main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

const webhookCache = new WebhookCache();

/** The catalog's event-type names, for filter suggestions; fetched once per sign-in. */
let eventTypes = null;
function loadEventTypes() {
  if (!eventTypes) {
    eventTypes = get("/api/v1/event-types", { limit: 1000 })
      .then((res) => res.data.map((t) => t.name).sort())
      .catch((err) => {
        eventTypes = null;
        throw err;
      });
  }
  return eventTypes;
}

function makeContext() {
  return {
    me,
    stream,
    canWrite: canWrite(me),
    webhooks: webhookCache,
    eventTypes: loadEventTypes,
    /** After the catalog changed: the next `eventTypes()` fetches it again. */
    forgetEventTypes() {
      eventTypes = null;
    },
    notify,
    href,
    /** A server admin acts on another tenant (null: their own); everything reloads. */
    switchTenant(id) {
      setTenantOverride(id);
      stream && stream.stop();
      location.hash = "#/settings";
      start();
    },
    navigate(path, query) {
      location.hash = href(path, query).slice(1);
    },
    title(text) {
      document.title = `${text} · hookrelay`;
    },
    onCleanup() {},
  };
}

// ---- Shell --------------------------------------------------------------------------------

const LIVE_TEXT = {
  connecting: ["Connecting…", "Opening the live stream"],
  live: ["Live", "Changes appear as they happen"],
  reconnecting: ["Reconnecting…", "The live stream dropped; retrying with backoff"],
  unavailable: ["Live updates off", "This server or role offers no live stream; use Refresh"],
  stopped: ["Offline", "Not connected"],
};

function who() {
  const p = me.principal || {};
  if (p.kind === "user") return p.email || p.id;
  if (p.kind === "api_key") return `API key ${p.id || ""}`.trim();
  if (p.kind === "portal") return "Portal";
  return "Signed in";
}

function renderShell() {
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Main" },
    h(
      "ul",
      {},
      SECTIONS.filter(([id]) => inNav(id)).map(([id, text]) => h("li", {}, h("a", { href: `#/${id}`, "data-section": id }, text))),
    ),
  );
  const live = h("span", { class: "live", "data-state": "connecting", role: "status" });
  const setLive = (status) => {
    const [text, title] = LIVE_TEXT[status] || LIVE_TEXT.stopped;
    live.dataset.state = status;
    live.title = title;
    fill(live, h("span", { class: "live-dot", "aria-hidden": "true" }), text);
  };
  setLive(stream.status === "stopped" ? "connecting" : stream.status);
  stream.on("status", ({ status }) => setLive(status));
  const signOutBtn = h("button", { type: "button", class: "btn btn-small", id: "sign-out" }, inPortal ? "Leave" : "Sign out");
  signOutBtn.addEventListener("click", signOut);
  const main = h("main", { id: "main", tabindex: -1, class: "main" });
  const skip = h("button", { type: "button", class: "skip-link" }, "Skip to content");
  skip.addEventListener("click", () => main.focus());
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: inPortal ? "#/deliveries" : "#/overview" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "↯"), "hookrelay"),
    nav,
    h(
      "div",
      { class: "whoami" },
      live,
      h(
        "span",
        { class: "identity", "data-testid": "identity" },
        h("span", { class: "identity-name" }, who()),
        badge(`role-${me.role}`, me.role),
        me.server_admin ? badge("role-admin", "server admin") : null,
        h("span", { class: "identity-tenant", title: me.tenant_id || "" }, "tenant ", h("strong", {}, me.tenant_name || me.tenant_id || "?")),
      ),
      signOutBtn,
    ),
  );
  fill(app, skip, header, main);
  shell = { main, nav };
  lastPath = null;
}

// ---- Signing in and out -------------------------------------------------------------------

function field(label, input, hint) {
  const id = input.id;
  return h("div", { class: "form-field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

/** The sign-in screen; `message` explains why it is shown (expired session, signed out). */
function renderSignIn(message) {
  me = null;
  if (inPortal) return renderPortalClosed(message);
  shell = null;
  clear(notices);
  document.title = "Sign in · hookrelay";
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true, spellcheck: "false" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const errors = h("div", { class: "signin-error", "aria-live": "assertive" });
  const form = h("form", { class: "signin-form", novalidate: true }, field("Email", email), field("Password", password), submit);

  const key = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false", placeholder: "hr_…", required: true });
  const keySubmit = h("button", { type: "submit", class: "btn btn-block" }, "Use this key");
  const keyForm = h("form", { class: "signin-form", novalidate: true }, field("API key", key, "For operators: the key is kept in this tab only and is forgotten when it closes."), keySubmit);

  let lockTimer = null;
  const showError = (text, extra) => {
    fill(errors, h("div", { class: "error-box", role: "alert" }, h("p", { class: "error-message" }, text), extra || null));
  };
  const lockFor = (secs) => {
    const until = Date.now() + secs * 1000;
    submit.disabled = true;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(lockTimer);
        submit.disabled = false;
        submit.textContent = "Sign in";
        return;
      }
      submit.textContent = `Try again in ${duration(left)}`;
    };
    clearInterval(lockTimer);
    lockTimer = setInterval(tick, 1000);
    tick();
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    if (!email.value.trim() || !password.value) {
      showError("Enter your email and password.");
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      const res = await api("/api/v1/auth/login", {
        method: "POST",
        body: { email: email.value.trim(), password: password.value },
        auth: false,
      });
      session.set(res.token, "session");
      password.value = "";
      await start();
    } catch (err) {
      submit.disabled = false;
      submit.textContent = "Sign in";
      if (err.status === 401) {
        showError("Wrong email or password.");
        password.select();
        password.focus();
      } else if (err.status === 429) {
        const secs = err.retryAfter || 60;
        showError(`Too many failed sign-ins. Try again in ${duration(secs)}.`, h("p", { class: "error-meta" }, "Sign-ins for this account or from this address are paused to stop password guessing."));
        lockFor(secs);
      } else {
        fill(errors, errorBox(err, "Could not sign in"));
      }
    }
  });

  keyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    const value = key.value.trim();
    if (!/^hr_[0-9A-Za-z]{20,}$/.test(value)) {
      showError("An API key starts with hr_ followed by letters and digits.");
      key.focus();
      return;
    }
    keySubmit.disabled = true;
    session.set(value, "api_key");
    try {
      key.value = "";
      await start({ keyCheck: true });
    } catch (err) {
      session.clear();
      keySubmit.disabled = false;
      if (err.status === 401) showError("That API key is not valid (or was revoked).");
      else fill(errors, errorBox(err, "Could not use the key"));
    }
  });

  const banner = message ? h("p", { class: `signin-message signin-message-${message.kind || "info"}`, role: "status" }, message.text) : null;
  fill(app,
    h(
      "main",
      { class: "signin", id: "main", tabindex: -1 },
      h(
        "section",
        { class: "signin-card", "aria-labelledby": "signin-title" },
        h("p", { class: "brand brand-large" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "↯"), "hookrelay"),
        h("h1", { id: "signin-title" }, "Sign in"),
        h("p", { class: "muted" }, "Deliveries, their payloads and errors, and one-click retries."),
        banner,
        errors,
        form,
        h("details", { class: "signin-key" }, h("summary", {}, "Use an API key instead"), keyForm),
      ),
    ),
  );
  email.focus();
}

/** The portal without a working link: no sign-in form, only what happened. */
function renderPortalClosed(message) {
  const text = message && message.kind === "info" ? "You have left the portal. Open your link again to come back." : "This portal link has expired or was revoked. Ask for a new link.";
  fill(
    app,
    h("main", { class: "main signin", id: "main" }, h("h1", {}, "hookrelay portal"), h("p", { class: "signin-message signin-message-warn", role: "status", "data-testid": "portal-closed" }, text)),
  );
}

async function signOut() {
  if (signingOut) return;
  signingOut = true;
  try {
    if (session.kind === "session" && session.token) {
      try {
        await post("/api/v1/auth/logout");
      } catch {
        // Already expired or revoked: either way the token is gone.
      }
    }
  } finally {
    stream && stream.stop();
    session.clear();
    signingOut = false;
    renderSignIn({ text: "You have signed out.", kind: "info" });
  }
}

/** The token stopped working (expired, logged out elsewhere, key revoked): back to sign-in. */
function expire() {
  // Several calls may fail at once; the first one shows the sign-in screen.
  if (!session.token) return;
  const wasKey = session.kind === "api_key";
  if (stream) stream.stop();
  session.clear();
  renderSignIn({
    text: wasKey ? "The API key was refused (revoked?). Sign in again." : "Your session has expired or was signed out. Sign in again.",
    kind: "warn",
  });
}
onUnauthorized(expire);

/** Loads who we are, then the shell and the current route. */
async function start({ keyCheck = false } = {}) {
  if (!keyCheck) fill(app, loading("Loading the dashboard…"));
  let who;
  try {
    // A pasted key that is refused is reported in its form rather than as an expired session.
    who = await api("/api/v1/me", { signOutOn401: !keyCheck });
  } catch (err) {
    if (keyCheck) throw err;
    if (err.status === 401) return; // onUnauthorized has shown the sign-in screen
    if (err.status === 404 && tenantHeaders()["X-Tenant-Id"]) {
      // The tenant this tab acted on is gone: back to the caller's own.
      setTenantOverride(null);
      return start();
    }
    fill(
      app,
      h("main", { class: "main", id: "main" }, errorBox(err, "Could not load your account"), h("p", {}, h("button", { type: "button", class: "btn", onclick: () => start() }, "Try again"))),
    );
    return;
  }
  me = who;
  if (!canRead(me)) {
    const out = h("button", { type: "button", class: "btn" }, "Sign out");
    out.addEventListener("click", signOut);
    fill(app,
      h(
        "main",
        { class: "main", id: "main" },
        h("h1", {}, "No access to the dashboard"),
        h("p", {}, `This account has the ${me.role} role, which can only send events. Ask an admin for the viewer role or above.`),
        out,
      ),
    );
    return;
  }
  stream = new LiveStream({ getToken: () => session.token, onUnauthorized: expire, getHeaders: tenantHeaders });
  renderShell();
  stream.start();
  webhookCache.invalidate();
  eventTypes = null;
  route();
}

window.addEventListener("hashchange", route);
setInterval(tickTimes, 15_000);

takePortalToken();
if (session.token) start();
else renderSignIn();
