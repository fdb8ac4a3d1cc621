// Unit tests of the dashboard's pure parts (SSE framing, merging stream changes, times), run with
// `node --test` by tests/it/dashboard.rs. They import the very files the binary serves.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RawNumber, jsonText, relTime } from "../../dashboard/dom.js";
import { LiveStream, SseParser, matchesFilters } from "../../dashboard/stream.js";
import { apiQuery, curlCommand, fetchAll, fromLocalInput, listFilters, mergeDelivery, parseSearch, rangeBounds, shellQuote, toLocalInput } from "../../dashboard/views/deliveries.js";
import { csvCell, parseCsv, toCsv } from "../../dashboard/csv.js";
import { execFileSync } from "node:child_process";
import { health } from "../../dashboard/views/webhooks.js";
import { patternMatches, suggestions } from "../../dashboard/views/webhook-edit.js";
import { same } from "../../dashboard/views/forms.js";

test("SSE: events, data lines, comments and the default type", () => {
  const p = new SseParser();
  const out = p.push('event: ready\ndata: {"tenant_id":"ten_1"}\n\n: keep-alive\n\ndata: a\ndata: b\n\n');
  assert.deepEqual(out, [
    { type: "ready", data: '{"tenant_id":"ten_1"}' },
    { type: "message", data: "a\nb" },
  ]);
});

test("SSE: chunks split anywhere, CRLF split across chunks, CR alone", () => {
  const text = 'event: delivery\r\ndata: {"id":"dlv_1","status":"failed"}\r\n\r\nevent:event\rdata:{"id":"evt_1"}\r\r\n';
  for (let cut = 0; cut <= text.length; cut++) {
    const p = new SseParser();
    const out = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
    assert.deepEqual(
      out,
      [
        { type: "delivery", data: '{"id":"dlv_1","status":"failed"}' },
        { type: "event", data: '{"id":"evt_1"}' },
      ],
      `cut at ${cut}`,
    );
  }
});

test("SSE: an event without data is not dispatched and the type resets", () => {
  const p = new SseParser();
  assert.deepEqual(p.push("event: lagged\n\ndata: x\n\n"), [{ type: "message", data: "x" }]);
  assert.deepEqual(p.push("data: partial"), []);
});

test("filters match status, event type and webhook", () => {
  const d = { status: "pending", event_type: "member.created", webhook_id: "wh_1" };
  assert.ok(matchesFilters(d, {}));
  assert.ok(matchesFilters(d, { status: "pending", event_type: "member.created", webhook_id: "wh_1" }));
  assert.ok(!matchesFilters(d, { status: "failed" }));
  assert.ok(!matchesFilters(d, { event_type: "member.deleted" }));
  assert.ok(!matchesFilters(d, { webhook_id: "wh_2" }));
});

test("filters match event, delivery and the time range as the API does (since inclusive, until exclusive)", () => {
  const d = { id: "dlv_1", event_id: "evt_1", status: "pending", created_at: "2026-11-23T10:00:00.000Z" };
  assert.ok(matchesFilters(d, { event_id: "evt_1", delivery_id: "dlv_1" }));
  assert.ok(!matchesFilters(d, { event_id: "evt_2" }));
  assert.ok(!matchesFilters(d, { delivery_id: "dlv_2" }));
  assert.ok(matchesFilters(d, { since: "2026-11-23T10:00:00.000Z" }));
  assert.ok(!matchesFilters(d, { since: "2026-11-23T10:00:00.001Z" }));
  assert.ok(!matchesFilters(d, { until: "2026-11-23T10:00:00.000Z" }));
  assert.ok(matchesFilters(d, { since: "2026-11-23T09:00:00Z", until: "2026-11-23T10:00:00.001Z" }));
  assert.ok(!matchesFilters({ ...d, created_at: null }, { since: "2026-11-23T09:00:00Z" }));
});

test("time ranges: presets count back from now, custom keeps its bounds, the hash keeps the preset", () => {
  const now = Date.parse("2026-11-23T10:00:00.000Z");
  assert.deepEqual(rangeBounds({ range: "1h" }, now), { since: "2026-11-23T09:00:00.000Z", until: "" });
  assert.deepEqual(rangeBounds({ range: "24h" }, now), { since: "2026-11-22T10:00:00.000Z", until: "" });
  assert.deepEqual(rangeBounds({ range: "7d" }, now), { since: "2026-11-16T10:00:00.000Z", until: "" });
  assert.deepEqual(rangeBounds({ range: "custom", since: "a", until: "b" }, now), { since: "a", until: "b" });
  assert.deepEqual(rangeBounds({ since: "ignored without range=custom" }, now), { since: "", until: "" });
  const f = listFilters({ range: "1h", since: "stale", status: "failed" });
  assert.equal(f.since, "", "a preset ignores a since left in the address");
  assert.deepEqual(apiQuery(f, now), { status: "failed", event_type: "", webhook_id: "", event_id: "", delivery_id: "", since: "2026-11-23T09:00:00.000Z", until: "" });
});

test("datetime-local values round-trip through RFC 3339 in the viewer's zone", () => {
  for (const iso of ["2026-11-23T10:00:05.000Z", "2026-03-29T01:30:00.000Z", "2026-07-01T23:59:59.000Z"]) {
    const local = toLocalInput(iso);
    assert.match(local, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    assert.equal(fromLocalInput(local), iso);
  }
  assert.equal(fromLocalInput(""), "");
  assert.equal(fromLocalInput("not a time"), null);
  assert.equal(toLocalInput(""), "");
});

test("the search box: event ids filter, delivery ids open, anything else is explained", () => {
  assert.deepEqual(parseSearch(" evt_01JABC "), { event_id: "evt_01JABC" });
  assert.deepEqual(parseSearch('"dlv_01JABC"'), { delivery_id: "dlv_01JABC" });
  assert.deepEqual(parseSearch(""), {});
  assert.ok(parseSearch("wh_01JABC").error);
  assert.ok(parseSearch("evt_01 OR 1=1").error);
});

test("CSV: RFC 4180 quoting of commas, quotes and line breaks, and it parses back", () => {
  assert.equal(csvCell(null), "");
  assert.equal(csvCell(500), "500");
  assert.equal(csvCell("plain"), "plain");
  assert.equal(csvCell('say "hi", twice'), '"say ""hi"", twice"');
  assert.equal(csvCell("two\nlines"), '"two\nlines"');
  const rows = [
    { id: "dlv_1", n: 1, err: 'HTTP 500: "boom", then\r\nmore' },
    { id: "dlv_2", n: null, err: "" },
  ];
  const text = toCsv(["id", "n", "err"], rows);
  assert.ok(text.endsWith("\r\n"));
  assert.deepEqual(parseCsv(text), [
    ["id", "n", "err"],
    ["dlv_1", "1", 'HTTP 500: "boom", then\r\nmore'],
    ["dlv_2", "", ""],
  ]);
});

test("export follows next_cursor 1,000 at a time and stops at the cap", async () => {
  const pages = [];
  const fetchPage = async (q) => {
    pages.push(q);
    const start = q.cursor ? Number(q.cursor) : 0;
    const n = Math.min(q.limit, 2500 - start);
    const data = Array.from({ length: n }, (_, i) => ({ id: start + i }));
    return { data, next_cursor: start + n < 2500 ? String(start + n) : null };
  };
  const all = await fetchAll({ status: "failed" }, { fetchPage });
  assert.equal(all.rows.length, 2500);
  assert.equal(all.truncated, false);
  assert.deepEqual(pages.map((p) => [p.limit, p.cursor, p.status]), [[1000, undefined, "failed"], [1000, "1000", "failed"], [1000, "2000", "failed"]]);
  pages.length = 0;
  const capped = await fetchAll({}, { fetchPage, cap: 1500 });
  assert.equal(capped.rows.length, 1500);
  assert.equal(capped.truncated, true);
  assert.deepEqual(pages.map((p) => p.limit), [1000, 500]);
});

test("copy as curl: the URL, the headers as sent, the body, shell-safe; content-length left out", () => {
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  const body = `{"event":"a.b","data":{"q":"it's \\"quoted\\"\nand $HOME"}}`;
  const cmd = curlCommand(
    { method: "POST", url: "https://example.com/hook?a=1&b=2", body },
    { n: 2, request_headers: { "content-type": "application/json", "content-length": "99", "webhook-signature": "[redacted]", "x-team": "crm 'north'" } },
    "dlv_1",
  );
  assert.match(cmd, /^# Attempt 2 of dlv_1/);
  assert.match(cmd, /webhook-signature: redacted by hookrelay/);
  assert.ok(!/content-length/.test(cmd.split("\n").filter((l) => !l.startsWith("#")).join("\n")));
  // The shell reads back exactly the URL, headers and body: run it through sh with echo for curl.
  const script = cmd.replace(/^curl /m, "printf '%s\\n' ");
  const out = execFileSync("sh", ["-c", script], { encoding: "utf8" });
  const args = out.split("\n");
  assert.deepEqual(args.slice(0, 4), ["-X", "POST", "https://example.com/hook?a=1&b=2", "-H"]);
  assert.ok(out.includes("x-team: crm 'north'\n"));
  assert.ok(out.includes("webhook-signature: [redacted]\n"));
  assert.ok(out.endsWith(`--data-raw\n${body}\n`), out);
});

test("an attempt's change merges into the row and keeps its creation time", () => {
  const row = { id: "dlv_1", status: "pending", attempts: 0, created_at: "2026-01-01T00:00:00Z", last_error: null };
  mergeDelivery(row, { id: "dlv_1", status: "failed", attempts: 1, created_at: null, last_error: "HTTP 500", next_attempt_at: null });
  assert.equal(row.status, "failed");
  assert.equal(row.attempts, 1);
  assert.equal(row.last_error, "HTTP 500");
  assert.equal(row.created_at, "2026-01-01T00:00:00Z");
  mergeDelivery(row, { id: "dlv_1", status: "succeeded", attempts: 2, created_at: null, last_error: null });
  assert.equal(row.last_error, null, "a success clears the error");
});

test("relative times", () => {
  const now = Date.parse("2026-11-23T10:00:00Z");
  assert.equal(relTime("2026-11-23T10:00:00Z", now), "just now");
  assert.equal(relTime("2026-11-23T09:59:30Z", now), "30 s ago");
  assert.equal(relTime("2026-11-23T09:55:00Z", now), "5 min ago");
  assert.equal(relTime("2026-11-23T07:00:00Z", now), "3 h ago");
  assert.equal(relTime("2026-11-21T10:00:00Z", now), "2 d ago");
  assert.equal(relTime("2026-11-23T10:01:00Z", now), "in 1 min");
  assert.equal(relTime("not a time", now), "");
});

test("pretty JSON keeps numbers JavaScript cannot hold, as written", () => {
  const v = { id: new RawNumber("12345678901234567890"), list: [new RawNumber("1.0"), 2], s: "@raw-x-0@" };
  assert.equal(jsonText(v), '{\n  "id": 12345678901234567890,\n  "list": [\n    1.0,\n    2\n  ],\n  "s": "@raw-x-0@"\n}');
  assert.equal(jsonText({ a: 1 }), '{\n  "a": 1\n}');
  assert.equal(jsonText(null), "null");
});

test("the live stream dispatches, reconnects, resyncs after a reconnect and stops on 401", async () => {
  const body = (text) =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(text));
          c.close();
        },
      }),
      { status: 200, headers: { "Content-Type": "text/event-stream" } },
    );
  const answers = [
    () => body('event: ready\ndata: {"tenant_id":"ten_1"}\n\n: keep-alive\n\nevent: delivery\ndata: {"id":"dlv_1","status":"failed"}\n\n'),
    () => body('event: ready\ndata: {"tenant_id":"ten_1"}\n\nevent: lagged\ndata: {"missed":3}\n\n'),
    () => new Response("", { status: 401 }),
  ];
  const seen = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    assert.equal(url, "/api/v1/stream");
    assert.equal(init.headers.Authorization, "Bearer hrs_test");
    seen.push("fetch");
    return answers.shift()();
  };
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stuck after ${seen.join(",")}`)), 10_000);
      const stream = new LiveStream({
        getToken: () => "hrs_test",
        onUnauthorized: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      stream.on("delivery", (d) => seen.push(`delivery:${d.id}:${d.status}`));
      stream.on("resync", (r) => seen.push(`resync:${r.reason}`));
      stream.on("status", ({ status }) => seen.push(`status:${status}`));
      stream.start();
    });
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(seen, [
    "status:connecting",
    "fetch",
    "status:live",
    "delivery:dlv_1:failed",
    "status:reconnecting",
    "status:reconnecting",
    "fetch",
    "status:live",
    "resync:reconnected",
    "resync:lagged",
    "status:reconnecting",
    "status:reconnecting",
    "fetch",
    "status:stopped",
  ]);
});

test("a webhook's health: disabled (with the reason), open, failing, healthy", () => {
  const closed = { state: "closed", consecutive_failures: 0, open_until: null };
  assert.deepEqual(health({ circuit: closed, disabled_reason: null }), { kind: "healthy", text: "healthy" });
  assert.deepEqual(health({ circuit: { ...closed, consecutive_failures: 3 } }), { kind: "failing", text: "failing (3)" });
  assert.deepEqual(health({ circuit: { state: "open", consecutive_failures: 10, open_until: "x" } }).kind, "open");
  assert.deepEqual(health({ circuit: { state: "half_open", consecutive_failures: 10 } }).kind, "open");
  assert.deepEqual(health({ circuit: closed, disabled_reason: "gone" }), { kind: "disabled", text: "disabled: gone" });
});

test("event patterns match as the server does: exact, prefix.*, and * without hookrelay.*", () => {
  assert.equal(patternMatches("member.created", "member.created"), true);
  assert.equal(patternMatches("member.created", "member.created.v2"), false);
  assert.equal(patternMatches("github.*", "github.pr.opened"), true);
  assert.equal(patternMatches("github.*", "githubx.push"), false);
  assert.equal(patternMatches("*", "order.paid"), true);
  assert.equal(patternMatches("*", "hookrelay.webhook.failing"), false);
  assert.equal(patternMatches("hookrelay.*", "hookrelay.webhook.failing"), true);
});

test("the event picker suggests every type and every prefix wildcard of them", () => {
  assert.deepEqual(suggestions(["github.pr.opened", "order.paid"]), ["*", "github.*", "github.pr.*", "github.pr.opened", "order.*", "order.paid"]);
});

test("only changed fields are sent: equality ignores key order, not values", () => {
  assert.equal(same({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }), true);
  assert.equal(same({ a: 1 }, { a: 2 }), false);
  assert.equal(same([1, 2], [2, 1]), false);
  assert.equal(same(null, undefined), true);
  assert.equal(same({}, null), false);
});
