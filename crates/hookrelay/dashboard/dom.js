// DOM helpers. Everything on screen is built with createElement and text nodes: API data
// (payloads, errors, response bodies, URLs) comes from strangers and is never parsed as markup.

/** Builds an element. `attrs`: `class`, `on<event>` handlers, booleans, other attributes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "href" && !/^[#/]/.test(String(value))) {
      // Only our own routes are links; a URL from the API is shown as text, never followed.
      throw new Error(`refusing a non-local link: ${value}`);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends strings (as text), numbers, nodes and nested arrays; skips null/false/undefined. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces `el`'s children: strings become text, null/false/undefined are left out. */
export function fill(el, ...children) {
  clear(el);
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A route link: `#/deliveries/dlv_…` with each segment encoded. */
export function link(segments, text, attrs = {}) {
  const path = segments.map((s) => encodeURIComponent(s)).join("/");
  return h("a", { href: `#/${path}`, ...attrs }, text);
}

// ---- JSON ---------------------------------------------------------------------------------

/** A number whose text JSON cannot round-trip (a 64-bit id, `1.0`): kept as written. */
export class RawNumber {
  constructor(source) {
    this.source = source;
  }
  // Should one reach arithmetic or a template anyway, it still behaves as its number.
  valueOf() {
    return Number(this.source);
  }
  toString() {
    return this.source;
  }
}

/**
 * JSON.parse that keeps numbers byte-for-byte where the browser can tell us their source (for
 * payloads: a 64-bit id must not be rounded). Used only for answers whose numbers are shown,
 * not computed with.
 */
export function parseJson(text) {
  return JSON.parse(text, function (key, value, context) {
    if (typeof value === "number" && context && typeof context.source === "string") {
      if (String(value) !== context.source) return new RawNumber(context.source);
    }
    return value;
  });
}

/** Pretty JSON text (two spaces), with RawNumbers written as they came. */
export function jsonText(value) {
  const marks = [];
  // A placeholder no payload string can contain by chance: it carries a fresh random nonce.
  const nonce = Math.random().toString(36).slice(2);
  const text = JSON.stringify(
    value,
    function (key, v) {
      if (v instanceof RawNumber) {
        marks.push(v.source);
        return `@raw-${nonce}-${marks.length - 1}@`;
      }
      return v;
    },
    2,
  );
  if (text === undefined) return "undefined";
  if (!marks.length) return text;
  return text.replace(new RegExp(`"@raw-${nonce}-(\\d+)@"`, "g"), (_, i) => marks[Number(i)]);
}

const JSON_TOKEN =
  /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** A `<pre>` of pretty JSON with keys, strings, numbers and literals in their own spans. */
export function jsonView(value, label) {
  const text = jsonText(value);
  const code = h("code");
  let last = 0;
  for (const m of text.matchAll(JSON_TOKEN)) {
    if (m.index > last) code.append(text.slice(last, m.index));
    let cls = "j-num";
    if (m[1] !== undefined) cls = m[2] ? "j-key" : "j-str";
    else if (m[3] !== undefined) cls = m[3] === "null" ? "j-null" : "j-bool";
    code.append(h("span", { class: cls }, m[1] !== undefined ? m[1] : m[0]));
    if (m[2]) code.append(m[2]);
    last = m.index + m[0].length;
  }
  code.append(text.slice(last));
  return h("pre", { class: "json", tabindex: 0, "aria-label": label || "JSON" }, code);
}

// ---- Time ---------------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `2026-11-23 10:00:00` in the viewer's time zone. */
export function absTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** `12 s ago`, `in 5 min`, `3 d ago`. */
export function relTime(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const diff = Math.round((t - now) / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 5) return diff <= 0 ? "just now" : "in a moment";
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)} h`;
  else text = `${Math.floor(abs / 86400)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

const zone = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  } catch {
    return "local time";
  }
})();

/**
 * A `<time>`: `rel` shows "5 min ago" (absolute on hover), `both` shows
 * "2026-11-23 10:00:00 · 5 min ago". Relative parts are refreshed by `tickTimes`.
 */
export function timeEl(iso, mode = "rel") {
  if (!iso) return h("span", { class: "muted" }, "—");
  const abs = absTime(iso);
  const el = h("time", {
    datetime: iso,
    title: `${abs} (${zone}) · ${iso}`,
    "data-rel": mode,
  });
  renderTime(el);
  return el;
}

function renderTime(el) {
  const iso = el.getAttribute("datetime");
  const rel = relTime(iso);
  el.textContent = el.dataset.rel === "both" ? `${absTime(iso)} · ${rel}` : rel;
}

/** Refreshes every relative time on the page. */
export function tickTimes() {
  for (const el of document.querySelectorAll("time[data-rel]")) renderTime(el);
}

// ---- Status and small widgets -------------------------------------------------------------

const STATUS_ICON = {
  succeeded: "✓",
  failed: "✕",
  pending: "◷",
  cancelled: "⊘",
  accepted: "✓",
  duplicate: "≡",
  rejected: "✕",
  rate_limited: "‖",
  active: "●",
  paused: "‖",
};

/** A badge whose meaning is in its text and icon, not only its colour. */
export function badge(status, text) {
  const icon = STATUS_ICON[status];
  return h(
    "span",
    { class: `badge badge-${status}`, "data-status": status },
    icon ? h("span", { class: "badge-icon", "aria-hidden": "true" }, icon) : null,
    text || status.replace("_", " "),
  );
}

/** An HTTP status of a response: green for 2xx, red otherwise, a dash when there was none. */
export function httpStatus(code) {
  if (code === null || code === undefined) return h("span", { class: "muted" }, "—");
  const ok = code >= 200 && code < 300;
  return h("span", { class: ["http", ok ? "http-ok" : "http-bad"] }, String(code));
}

export function mono(text, attrs = {}) {
  return h("code", { class: "mono", ...attrs }, text);
}

/** `<dl>` of label → value rows; values may be nodes. */
export function fields(rows) {
  return h(
    "dl",
    { class: "fields" },
    rows
      .filter(Boolean)
      .map(([label, value]) => h("div", { class: "field" }, h("dt", {}, label), h("dd", {}, value))),
  );
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(getText, label = "Copy") {
  const btn = h("button", { type: "button", class: "btn btn-small" }, label);
  btn.addEventListener("click", async () => {
    const text = typeof getText === "function" ? getText() : getText;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Plain http on a non-local host has no clipboard API: copy through a selection instead.
      const area = h("textarea", { class: "visually-hidden", readonly: true });
      area.value = text;
      document.body.append(area);
      area.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
    }
    btn.textContent = ok ? "Copied ✓" : "Copy failed: select and copy by hand";
    setTimeout(() => (btn.textContent = label), 2000);
  });
  return btn;
}

/** Loading placeholder with a text for screen readers. */
export function loading(what = "Loading…") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), what);
}

export function emptyState(title, text, action) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), text ? h("p", {}, text) : null, action || null);
}

/**
 * The contract's error, readable: what failed, the server's message and code, and the request
 * id to quote to support.
 */
export function errorBox(err, what) {
  const requestId = err && err.requestId;
  return h(
    "div",
    { class: "error-box", role: "alert" },
    h("p", { class: "error-title" }, what || "Something went wrong"),
    h("p", { class: "error-message" }, (err && err.message) || String(err)),
    h(
      "p",
      { class: "error-meta" },
      err && err.code ? ["Code ", mono(err.code)] : null,
      err && err.status ? ` · HTTP ${err.status}` : null,
      requestId ? [" · Request id ", mono(requestId, { class: "mono selectable" })] : null,
    ),
  );
}

/** A modal confirmation built on `<dialog>`; resolves true when confirmed. */
export function confirmDialog({ title, text, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const cancelBtn = h("button", { type: "button", class: "btn", autofocus: true }, "Cancel");
    const okBtn = h("button", { type: "button", class: ["btn", danger ? "btn-danger" : "btn-primary"] }, confirm);
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "dialog-title" },
      h("h2", { id: "dialog-title" }, title),
      h("p", {}, text),
      h("div", { class: "actions" }, cancelBtn, okBtn),
    );
    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancelBtn.addEventListener("click", () => done(false));
    okBtn.addEventListener("click", () => done(true));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelBtn.focus();
  });
}

/**
 * A table inside a scrollable, focusable region (so keyboard users can scroll it). Each cell
 * gets its column's name as `data-label`, which narrow screens show beside the value when the
 * rows become cards — also for rows added later.
 */
export function table(caption, headers, rows) {
  const labels = headers.map((hd) => (typeof hd === "string" ? hd : hd.text));
  const label = (tr) =>
    [...tr.children].forEach((td, i) => {
      if (!labels[i]) return;
      td.setAttribute("data-label", labels[i]);
      // One box per cell, so the card layout puts the label and the whole value side by side.
      if (td.childNodes.length > 1) td.append(h("div", { class: "cell" }, [...td.childNodes]));
    });
  const tbody = h("tbody", {}, rows);
  [...tbody.children].forEach(label);
  new MutationObserver((changes) => {
    for (const c of changes) for (const n of c.addedNodes) if (n.nodeName === "TR") label(n);
  }).observe(tbody, { childList: true });
  const el = h(
    "div",
    { class: "table-wrap table-cards", role: "region", "aria-label": caption, tabindex: 0 },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((hd) => (typeof hd === "string" ? h("th", { scope: "col" }, hd) : h("th", { scope: "col", class: hd.class }, hd.text))),
        ),
      ),
      tbody,
    ),
  );
  return { el, tbody };
}

/** Seconds as `1 min 5 s`. */
export function duration(secs) {
  secs = Math.max(0, Math.ceil(secs));
  if (secs < 60) return `${secs} s`;
  const m = Math.floor(secs / 60);
  const s = secs % 60;
  return s ? `${m} min ${s} s` : `${m} min`;
}

/**
 * A "Load more" button in `box` while a list has a next page. `fetchPage(cursor)` gets the
 * next page and each of its items goes to `onItem`; set `pager.cursor` from the first page,
 * then call `pager.render()`.
 */
export function morePager(box, fetchPage, onItem, what) {
  const pager = {
    cursor: null,
    render() {
      clear(box);
      if (!pager.cursor) return;
      const btn = h("button", { type: "button", class: "btn" }, "Load more");
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        btn.textContent = "Loading…";
        try {
          const page = await fetchPage(pager.cursor);
          page.data.forEach((item) => onItem(item));
          pager.cursor = page.next_cursor;
          pager.render();
        } catch (err) {
          fill(box, errorBox(err, `Could not load more ${what}`));
        }
      });
      box.append(btn);
    },
  };
  return pager;
}

