// Deliveries, events and replay in Debian's Chromium (playwright-core): the time-range filter and
// id search, the CSV export checked row by row against the API, copy as curl, an event replayed
// to one chosen webhook arriving live, a webhook's failures replayed in bulk, a viewer offered no
// replay, and screenshots (light, dark, desktop, phone). Started by tests/it/dashboard.rs.

import { readFile } from "node:fs/promises";
import { parseCsv } from "../../dashboard/csv.js";
import { api, assert, BASE, consoleErrors, env, launch, liveIndicator, main, newContext, newPage, noViolations, pageShots, poll, signIn, signOut, textMatches } from "./common.mjs";

const EMAIL = env("HR_EMAIL");
const PASSWORD = env("HR_PASSWORD");
const VIEWER_EMAIL = env("HR_VIEWER_EMAIL");
const VIEWER_PASSWORD = env("HR_VIEWER_PASSWORD");
const CONTROL = env("HR_CONTROL_URL");
const SPLIT = env("HR_SPLIT");
const EARLY_EVENT = env("HR_EARLY_EVENT");
const LATE_EVENT = env("HR_LATE_EVENT");
const CRM = env("HR_CRM_WEBHOOK");
const AUDIT = env("HR_AUDIT_WEBHOOK");
const PHONE = { width: 390, height: 844 };
// Not UTC, so a time typed into the page must really be converted from the viewer's zone.
const ZONE = "America/New_York";

let step = "start";
const log = (msg) => console.log(`[deliveries.spec] ${msg}`);

/** A `datetime-local` value for `iso` as someone in `zone` sees it (to the second). */
function localInput(iso, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

/**
 * `value` read back from a `datetime-local` input, to the second. The browser normalises the
 * value (HTML's "valid normalized local date and time string") and drops a `:00` second, so a
 * split that falls on a whole minute reads back as `…T07:38`, not `…T07:38:00`.
 */
const toSeconds = (value) => (/T\d\d:\d\d$/.test(value) ? `${value}:00` : value);

/** Every delivery the API lists for `query`, following next_cursor. */
async function apiDeliveries(query) {
  const out = [];
  let cursor = null;
  do {
    const q = new URLSearchParams({ ...query, limit: "1000" });
    if (cursor) q.set("cursor", cursor);
    const r = await api("GET", `/api/v1/deliveries?${q}`);
    assert(r.status === 200, `GET /api/v1/deliveries?${q} answered ${r.status}: ${JSON.stringify(r.body)}`);
    out.push(...r.body.data);
    cursor = r.body.next_cursor;
  } while (cursor);
  return out;
}

const rowIds = (page) => page.locator("tbody tr[data-id]").evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

async function control(action) {
  const r = await fetch(`${CONTROL}/${action}`, { method: "POST" });
  assert(r.ok, `control ${action} answered ${r.status}`);
}

async function run() {
  await launch();
  const context = await newContext(undefined, { timezoneId: ZONE, acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await newPage(context);
  const everything = await apiDeliveries({});
  assert(everything.length === 12, `12 seeded deliveries, not ${everything.length}`);

  step = "sign in; the list shows every delivery";
  await signIn(page, EMAIL, PASSWORD);
  await liveIndicator(page);
  await page.locator('.nav a[data-section="deliveries"]').click();
  await poll("twelve rows", async () => (await page.locator("tbody tr[data-id]").count()) === 12);

  step = "a custom time range (typed in the viewer's zone) narrows the list";
  await page.locator("#f-range").selectOption("custom");
  await page.locator("#f-since").waitFor();
  assert(await page.locator("#f-since").evaluate((el) => el === document.activeElement), "Custom range… moves focus to From");
  await page.locator("#f-since").fill(localInput(SPLIT, ZONE));
  await page.locator("#f-since").press("Enter");
  const late = await apiDeliveries({ since: SPLIT });
  assert(late.length === 6, `6 deliveries since the split, not ${late.length}`);
  await poll("only the late deliveries", async () => sameSet(await rowIds(page), late.map((d) => d.id)));
  const url = new URL(page.url().replace("#/", "/"));
  assert(url.searchParams.get("range") === "custom" && url.searchParams.get("since") === SPLIT, `the range is in the address as RFC 3339: ${page.url()}`);
  await page.reload();
  await poll("the range after a reload", async () => toSeconds(await page.locator("#f-since").inputValue()) === localInput(SPLIT, ZONE) && sameSet(await rowIds(page), late.map((d) => d.id)));
  await pageShots(page, "deliveries", { phone: PHONE });

  step = "a To before From is explained beside To";
  await page.locator("#f-until").fill(localInput(new Date(Date.parse(SPLIT) - 60_000).toISOString(), ZONE));
  await page.getByRole("button", { name: "Apply" }).click();
  await textMatches(page.locator('[data-field="until"] .field-error'), /must not be before From/, "the range error beside To");
  await page.locator("#f-until").fill("");

  step = "the CSV export of the filtered list matches the API's list for the same filter";
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export-csv").click()]);
  assert(/^deliveries-\d{8}-\d{6}\.csv$/.test(download.suggestedFilename()), `the file name: ${download.suggestedFilename()}`);
  await textMatches(page.locator("#export-note"), /Exported 6 deliveries/, "the export's note");
  const csv = parseCsv(await readFile(await download.path(), "utf8"));
  const columns = ["id", "event_id", "event_type", "webhook_id", "status", "attempts", "last_response_status", "last_error", "created_at", "delivered_at"];
  assert(JSON.stringify(csv[0]) === JSON.stringify(columns), `the header row: ${csv[0]}`);
  const rows = csv.slice(1);
  assert(rows.length === late.length, `${rows.length} CSV rows for ${late.length} deliveries`);
  for (const [i, d] of late.entries()) {
    const want = columns.map((c) => (d[c] === null || d[c] === undefined ? "" : String(d[c])));
    assert(JSON.stringify(rows[i]) === JSON.stringify(want), `CSV row ${i + 1} is the API's delivery, in order:\n${rows[i]}\n${want}`);
  }
  assert(rows.some((r) => /,/.test(r[7]) && /"/.test(r[7])), `a last_error with commas and quotes (the broken transform's) survives the quoting: ${rows.map((r) => r[7])}`);
  await noViolations(page);

  step = "a preset range: the last hour holds everything, and stays in the address";
  await page.locator("#f-range").selectOption("1h");
  await poll("all twelve rows", async () => (await page.locator("tbody tr[data-id]").count()) === 12);
  assert(/range=1h/.test(page.url()) && !/since=/.test(page.url()), `the preset is in the address, not its bounds: ${page.url()}`);
  await page.locator("#f-status").selectOption("failed");
  await poll("only failed rows", async () => (await page.locator("tbody tr[data-id]").count()) === 7 && (await page.locator('tbody tr[data-status="failed"]').count()) === 7);
  await page.locator("#f-status").selectOption("");
  await poll("twelve rows again", async () => (await page.locator("tbody tr[data-id]").count()) === 12);

  step = "search: an event id lists its deliveries, a wrong id is explained, a delivery id opens it";
  await page.locator("#f-search").fill(LATE_EVENT);
  await page.locator("#f-search").press("Enter");
  const ofEvent = (await api("GET", `/api/v1/events/${LATE_EVENT}`)).body.deliveries.map((d) => d.id);
  await poll("the event's three deliveries", async () => ofEvent.length === 3 && sameSet(await rowIds(page), ofEvent));
  await textMatches(page.locator("#event-filter"), new RegExp(LATE_EVENT), "the note naming the event");
  await page.locator("#f-search").fill("order 42");
  await page.locator("#f-search").press("Enter");
  await textMatches(page.locator('[data-field="search"] .field-error'), /event id \(evt_…\) or a delivery id/, "the search error beside the box");
  assert((await page.locator("#f-search").getAttribute("aria-invalid")) === "true", "the box is marked invalid");
  const crmDelivery = late.find((d) => d.webhook_id === CRM);
  await page.locator("#f-search").fill(` ${crmDelivery.id} `);
  await page.locator("#f-search").press("Enter");
  await poll("the delivery's page", async () => page.url().endsWith(`#/deliveries/${crmDelivery.id}`));

  step = "copy as curl: the target URL, the headers as sent, the body, and the redaction said";
  await page.locator(".attempt").first().waitFor();
  const detail = (await api("GET", `/api/v1/deliveries/${crmDelivery.id}`)).body;
  const crmHook = (await api("GET", `/api/v1/webhooks/${CRM}`)).body;
  assert(detail.request && detail.request.url === crmHook.url, `the detail names the target: ${JSON.stringify(detail.request)}`);
  const copy = page.locator('.attempt [data-action="copy-curl"]').first();
  await copy.click();
  await textMatches(copy, /Copied/, "the copy's confirmation");
  const curl = await page.evaluate(() => navigator.clipboard.readText());
  assert(curl.includes(`curl -X POST '${crmHook.url}'`), `the URL in the command:\n${curl}`);
  const quoted = `'${detail.request.body.replace(/'/g, "'\\''")}'`;
  assert(curl.includes(`--data-raw ${quoted}`), `the body, shell-quoted, in the command:\n${curl}`);
  assert(/webhook-signature: \[redacted\]/.test(curl) && /# .*redacted by hookrelay/.test(curl), `the redacted signature is said:\n${curl}`);
  assert(/-H 'x-webhook-event: order\.paid'/i.test(curl), `the headers as sent:\n${curl}`);
  await noViolations(page);
  await pageShots(page, "delivery", { phone: PHONE });

  step = "events and the dead-letter queue";
  await page.locator('.nav a[data-section="events"]').click();
  // The seeded orders and hookrelay's own delivery.exhausted events of the failures.
  const events = (await api("GET", "/api/v1/events?limit=100")).body.data;
  assert(events.filter((e) => e.type.startsWith("order.")).length === 5, `five orders among ${events.map((e) => e.type)}`);
  await poll("every event", async () => (await page.locator("tbody tr[data-id]").count()) === events.length);
  await pageShots(page, "events", { phone: PHONE });
  await page.locator('.nav a[data-section="dlq"]').click();
  await poll("seven dead letters", async () => (await page.locator("tbody tr[data-id]").count()) === 7);
  await pageShots(page, "dlq", { phone: PHONE });

  step = "replay an event to one chosen webhook: exactly one new delivery, live, succeeded";
  await page.goto(`${BASE}/#/events/${EARLY_EVENT}`);
  await poll("the event's two deliveries", async () => (await page.locator("section tbody tr[data-id]").count()) === 2);
  const before = (await api("GET", `/api/v1/events/${EARLY_EVENT}`)).body.deliveries.map((d) => d.id);
  const marker = await page.evaluate(() => (window.__noReload = Math.random()));
  await page.locator("#replay-event").click();
  await page.locator("dialog[open] #replay-webhooks").waitFor();
  assert(await page.locator("#replay-matching").evaluate((el) => el === document.activeElement), "the dialog opens with focus on its first choice");
  await page.locator("#replay-chosen").check();
  await page.locator("#replay-confirm").click();
  await textMatches(page.locator('dialog[open] [data-field="webhook_ids"] .field-error'), /Tick at least one webhook/, "the empty choice explained beside the list");
  await page.locator(`dialog[open] input[data-webhook="${AUDIT}"]`).check();
  await pageShots(page, "event-replay", { phone: PHONE, full: false });
  await page.locator("#replay-confirm").click();
  await poll("the dialog to close", async () => (await page.locator("dialog[open]").count()) === 0);
  await textMatches(page.locator("#replay-result"), /Replayed: 1 new delivery/, "the replay's result");
  const fresh = await poll("one new row", async () => {
    const ids = await page.locator("section tbody tr[data-id]").evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    const added = ids.filter((i) => !before.includes(i));
    return ids.length === 3 && added.length === 1 ? added[0] : false;
  });
  await poll("the new delivery to succeed on the page", async () => (await page.locator(`section tr[data-id="${fresh}"]`).getAttribute("data-status")) === "succeeded", 20_000);
  assert((await page.evaluate(() => window.__noReload)) === marker, "the page was not reloaded");
  const replayed = (await api("GET", `/api/v1/deliveries/${fresh}`)).body;
  assert(replayed.webhook_id === AUDIT && replayed.status === "succeeded", `the new delivery went to the chosen webhook: ${JSON.stringify(replayed)}`);
  assert((await api("GET", `/api/v1/events/${EARLY_EVENT}`)).body.deliveries.length === 3, "exactly one delivery was added");
  await textMatches(page.locator("#ed-title"), /Deliveries \(3\)/, "the count");
  await noViolations(page);

  step = "bulk replay of a webhook's failures: queued N, and they are delivered";
  await control("succeed");
  const failedBefore = (await apiDeliveries({ webhook_id: CRM, status: "failed" })).length;
  assert(failedBefore === 5, `five failed deliveries to the CRM webhook, not ${failedBefore}`);
  await page.goto(`${BASE}/#/webhooks/${CRM}`);
  await page.locator("#replay-webhook").click();
  await page.locator("dialog[open] #replay-since").waitFor();
  await page.locator("#replay-mode").selectOption("failed");
  await textMatches(page.locator("#replay-mode-hint"), /failed/, "the mode's explanation");
  await pageShots(page, "webhook-replay", { phone: PHONE, full: false });
  await page.locator("#replay-until").fill(localInput(new Date(Date.now() - 7_200_000).toISOString(), ZONE));
  await page.locator("#replay-webhook-confirm").click();
  await textMatches(page.locator('dialog[open] [data-field="until"] .field-error'), /must not be before Since/, "Until before Since explained beside Until");
  await page.locator("#replay-until").fill("");
  await page.locator("#replay-webhook-confirm").click();
  await textMatches(page.locator("#replay-queued"), new RegExp(`Replay queued ${failedBefore} deliveries`), "queued N");
  await poll("the replayed deliveries to succeed", async () => (await apiDeliveries({ webhook_id: CRM, status: "succeeded" })).length === failedBefore, 20_000);
  await noViolations(page);

  step = "a viewer is offered no replay, but may export and copy";
  const viewerContext = await newContext();
  const viewer = await newPage(viewerContext);
  await signIn(viewer, VIEWER_EMAIL, VIEWER_PASSWORD);
  await viewer.goto(`${BASE}/#/events/${EARLY_EVENT}`);
  await viewer.locator("section tbody tr").first().waitFor();
  assert((await viewer.locator("#replay-event").count()) === 0, "no Replay on an event for a viewer");
  await viewer.goto(`${BASE}/#/webhooks/${CRM}`);
  await viewer.locator(".stats .stat").first().waitFor();
  assert((await viewer.locator("#replay-webhook").count()) === 0, "no Replay since… on a webhook for a viewer");
  await viewer.goto(`${BASE}/#/deliveries`);
  await viewer.locator("#export-csv").waitFor();
  await signOut(viewer);
  await viewerContext.close();

  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  log("done");
}

await main("deliveries.spec", run, () => step);
