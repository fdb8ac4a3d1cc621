// Live updates from `GET /api/v1/stream` (Server-Sent Events). EventSource cannot send an
// Authorization header, so this reads the stream with fetch() and parses the SSE framing itself,
// reconnecting with backoff; views subscribe to `delivery`, `event` and `resync`.

/** Incremental SSE parser (the WHATWG framing: fields, comments, CR/LF/CRLF line ends). */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }
  reset() {
    this.type = "";
    this.data = [];
  }
  /** Feeds text; answers the complete events `{type, data}` it finished. */
  push(text) {
    this.buffer += text;
    const out = [];
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buffer);
      if (!m) break;
      // A lone CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === "\r" && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      if (line === "") {
        if (this.data.length) out.push({ type: this.type || "message", data: this.data.join("\n") });
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
    }
    return out;
  }
}

const MAX_BACKOFF_MS = 30_000;
/** The server sends a keep-alive about every 15 s; silence this long means a dead connection. */
const SILENCE_MS = 45_000;

/**
 * One live connection shared by every view. `status` is `connecting`, `live`, `reconnecting`,
 * `unavailable` (the server or the role offers no stream) or `stopped`.
 */
export class LiveStream {
  constructor({ getToken, onUnauthorized, getHeaders }) {
    this.getToken = getToken;
    // Extra headers per connection (a server admin's X-Tenant-Id).
    this.getHeaders = getHeaders;
    this.onUnauthorized = onUnauthorized;
    this.listeners = new Map();
    this.status = "stopped";
    this.controller = null;
    this.running = false;
    this.tenant = null;
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, payload) {
    for (const fn of [...(this.listeners.get(type) || [])]) {
      try {
        fn(payload);
      } catch (e) {
        console.error(`stream listener for ${type} failed`, e);
      }
    }
  }

  setStatus(status, detail) {
    this.status = status;
    this.emit("status", { status, detail });
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.controller) this.controller.abort();
    this.setStatus("stopped");
  }

  async loop() {
    let failures = 0;
    let connectedBefore = false;
    while (this.running) {
      this.setStatus(connectedBefore || failures ? "reconnecting" : "connecting");
      const controller = new AbortController();
      this.controller = controller;
      let watchdog = null;
      const feed = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
      };
      let retryAfterMs = null;
      try {
        feed();
        const response = await fetch("/api/v1/stream", {
          headers: { Authorization: `Bearer ${this.getToken()}`, Accept: "text/event-stream", ...(this.getHeaders ? this.getHeaders() : {}) },
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401) {
          clearTimeout(watchdog);
          this.running = false;
          this.setStatus("stopped");
          this.onUnauthorized();
          return;
        }
        if (response.status === 403 || response.status === 404) {
          // A role without read access, or a server without the stream: nothing to retry soon.
          this.setStatus("unavailable", response.status);
          retryAfterMs = 60_000;
          throw new Error(`stream answered ${response.status}`);
        }
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed();
          for (const ev of parser.push(value)) {
            let data;
            try {
              data = JSON.parse(ev.data);
            } catch {
              continue;
            }
            if (ev.type === "ready") {
              this.tenant = data.tenant_id;
              failures = 0;
              this.setStatus("live");
              // Whatever changed while we were away was not sent: views refetch.
              if (connectedBefore) this.emit("resync", { reason: "reconnected" });
              connectedBefore = true;
            } else if (ev.type === "lagged") {
              this.emit("resync", { reason: "lagged", missed: data.missed });
            } else {
              this.emit(ev.type, data);
            }
          }
        }
      } catch (e) {
        if (!this.running) break;
        if (!(e && e.name === "AbortError")) console.debug("live stream dropped:", e && e.message);
      } finally {
        clearTimeout(watchdog);
      }
      if (!this.running) break;
      failures += 1;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures - 1, 5));
      const wait = retryAfterMs || backoff * (0.5 + Math.random() / 2);
      if (this.status !== "unavailable") this.setStatus("reconnecting", Math.round(wait / 1000));
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/**
 * Whether a delivery matches the deliveries list's filters: status, event type, webhook, event,
 * delivery, and `since` (at or after) / `until` (before) its creation, as the API filters.
 */
export function matchesFilters(delivery, filters) {
  if (filters.status && delivery.status !== filters.status) return false;
  if (filters.event_type && delivery.event_type !== filters.event_type) return false;
  if (filters.webhook_id && delivery.webhook_id !== filters.webhook_id) return false;
  if (filters.event_id && delivery.event_id !== filters.event_id) return false;
  if (filters.delivery_id && delivery.id !== filters.delivery_id) return false;
  if (filters.since || filters.until) {
    const at = Date.parse(delivery.created_at);
    if (Number.isNaN(at)) return false;
    if (filters.since && at < Date.parse(filters.since)) return false;
    if (filters.until && at >= Date.parse(filters.until)) return false;
  }
  return true;
}
