// Drives the hookrelay dashboard in Debian's Chromium (playwright-core, no browser download).
// Started by tests/it/dashboard.rs, which seeds the server and passes everything in HR_* vars.
// Every wait polls with a deadline; a failure prints the step, saves a screenshot, exits 1.

import { createHmac } from "node:crypto";
import { api, assert, BASE, API_KEY, consoleErrors, env, launch, liveIndicator, main, newContext, newPage, noViolations, pageShots, poll, shot, signIn, signOut, textMatches } from "./common.mjs";

const EMAIL = env("HR_EMAIL");
const PASSWORD = env("HR_PASSWORD");
const VIEWER_EMAIL = env("HR_VIEWER_EMAIL");
const VIEWER_PASSWORD = env("HR_VIEWER_PASSWORD");
const LOCKED_EMAIL = env("HR_LOCKED_EMAIL");
const MAX_FAILURES = Number(env("HR_LOGIN_MAX_FAILURES"));
const CONTROL = env("HR_CONTROL_URL");
const FAILED_DELIVERY = env("HR_FAILED_DELIVERY");
const DLQ_ROW_DELIVERY = env("HR_DLQ_ROW_DELIVERY");
const FAILING_WEBHOOK = env("HR_FAILING_WEBHOOK");
const GONE_WEBHOOK = env("HR_GONE_WEBHOOK");
const RECEIVER_URL = env("HR_RECEIVER_URL");
const SOURCE_ID = env("HR_SOURCE_ID");

let step = "start";
const log = (msg) => console.log(`[dashboard.spec] ${msg}`);

async function control(action) {
  const r = await fetch(`${CONTROL}/${action}`, { method: "POST" });
  assert(r.ok, `control ${action} answered ${r.status}`);
}

async function run() {
  await launch();
  const context = await newContext();
  const page = await newPage(context);

  step = "the sign-in page loads with its security headers";
  const first = await page.goto(`${BASE}/`);
  assert(first.status() === 200, `GET / answered ${first.status()}`);
  assert(/default-src 'self'/.test(first.headers()["content-security-policy"] || ""), "GET / has a CSP");
  await page.locator("#email").waitFor();
  await shot(page, "01-sign-in");
  await pageShots(page, "sign-in");

  step = "a wrong password is refused with a clear message";
  await page.locator("#email").fill(EMAIL);
  await page.locator("#password").fill("definitely-not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await textMatches(page.locator(".signin-error"), /Wrong email or password/, "the wrong-password error");
  await shot(page, "02-sign-in-wrong-password");

  step = "repeated failures are throttled (429) and the wait is shown";
  await page.locator("#email").fill(LOCKED_EMAIL);
  for (let i = 0; i <= MAX_FAILURES; i++) {
    await page.locator("#password").fill(`wrong-password-${i}`);
    const button = page.locator(".signin-form button[type=submit]").first();
    await poll("the sign-in button to be enabled", () => button.isEnabled());
    await button.click();
    await textMatches(page.locator(".signin-error"), /Wrong email or password|Too many failed sign-ins/, "a sign-in error");
    if (/Too many/.test(await page.locator(".signin-error").innerText())) break;
  }
  const throttled = await textMatches(page.locator(".signin-error"), /Too many failed sign-ins\. Try again in \d+ (min|s)/, "the throttle message");
  log(`throttled: ${throttled.split("\n")[0]}`);
  await shot(page, "03-sign-in-throttled");

  step = "sign in";
  await signIn(page, EMAIL, PASSWORD);
  await textMatches(page.locator(".identity"), /admin/, "the role in the header");
  await textMatches(page.locator(".identity"), /tenant\s+default/, "the tenant in the header");
  await liveIndicator(page);

  step = "the overview is the landing page: charts of the seeded run, the troubled webhook first";
  await poll("the overview's address", async () => /#\/overview/.test(page.url()));
  const seeded = (await api("GET", "/api/v1/stats")).body;
  assert(seeded.totals.succeeded >= 54 && seeded.totals.failed >= 3, `the seeded run is counted: ${JSON.stringify(seeded.totals)}`);
  await poll("the outcomes chart to hold the seeded deliveries", async () => Number(await page.locator("#overview-outcomes").getAttribute("data-total")) >= seeded.totals.succeeded + seeded.totals.failed);
  assert((await page.locator("#overview-outcomes").getAttribute("data-points")) === "60", "an hour of minutes");
  await page.locator("#overview-outcomes canvas").first().waitFor();
  await page.locator("#overview-latency canvas").first().waitFor();
  await page.locator("#overview-success canvas").first().waitFor();
  await page.locator("#overview-queue canvas").first().waitFor();
  await textMatches(page.locator("#stat-succeeded"), new RegExp(`^${seeded.totals.succeeded.toLocaleString("en-US")}$`), "the succeeded card");
  await textMatches(page.locator("#stat-dlq"), /^[1-9]/, "the dead-letter card");
  await textMatches(page.locator("#stat-latency"), /\d+ ms · \d+/, "the latency card");
  await textMatches(page.locator("#overview-outcomes .u-legend"), /succeeded[\s\S]*retried[\s\S]*failed/, "the chart's legend");
  const firstHook = page.locator("#overview-webhooks tbody tr").first();
  assert((await firstHook.getAttribute("data-id")) === GONE_WEBHOOK, "the disabled webhook is listed first");
  await textMatches(firstHook.locator("[data-health]"), /disabled: gone/, "its health");
  assert((await page.locator(`#overview-webhooks tr[data-id="${FAILING_WEBHOOK}"][data-health=failing]`).count()) === 1, "the failing webhook says so");
  await noViolations(page);
  await pageShots(page, "overview");

  step = "the overview's range: 24 h has ten-minute points, 7 d hourly ones, kept across a reload";
  await page.locator("#range-24h").click();
  await poll("144 points", async () => (await page.locator("#overview-outcomes").getAttribute("data-points")) === "144");
  assert(/range=24h/.test(page.url()), `the range is in the address: ${page.url()}`);
  await page.reload();
  await poll("24 h after a reload", async () => (await page.locator("#range-24h").getAttribute("aria-checked")) === "true" && (await page.locator("#overview-outcomes").getAttribute("data-points")) === "144");
  await page.locator("#range-24h").focus();
  await page.keyboard.press("ArrowRight");
  await poll("168 points by keyboard", async () => (await page.locator("#overview-outcomes").getAttribute("data-points")) === "168");
  assert((await page.evaluate(() => document.activeElement && document.activeElement.id)) === "range-7d", "focus follows the arrow key");
  await shot(page, "overview-7d");
  await page.locator("#range-1h").click();
  await poll("back to an hour", async () => (await page.locator("#overview-outcomes").getAttribute("data-points")) === "60");

  step = "deliveries are listed with their statuses";
  await page.locator('.nav a[data-section="deliveries"]').click();
  await page.locator("table tbody tr").first().waitFor();
  await poll("failed and succeeded rows", async () => (await page.locator("tr[data-status=failed]").count()) >= 3 && (await page.locator("tr[data-status=succeeded]").count()) >= 4);
  const failedBadge = page.locator(`tr[data-id="${FAILED_DELIVERY}"] .badge`);
  await textMatches(failedBadge, /failed/, "the failed delivery's badge (text, not just colour)");
  await noViolations(page);
  await shot(page, "04-deliveries");

  step = "Load more pages on with next_cursor";
  assert((await page.locator("tbody tr").count()) === 50, "the first page holds 50 deliveries");
  await page.getByRole("button", { name: "Load more" }).click();
  await poll("the second page", async () => (await page.locator("tbody tr").count()) === 58);
  assert((await page.getByRole("button", { name: "Load more" }).count()) === 0, "no third page");

  step = "filters narrow the list and survive a reload";
  await page.locator("#f-status").selectOption("failed");
  await poll("only failed rows", async () => (await page.locator("tbody tr").count()) === (await page.locator("tr[data-status=failed]").count()) && (await page.locator("tr[data-status=failed]").count()) >= 3);
  assert(/status=failed/.test(page.url()), `the filter is in the URL: ${page.url()}`);
  await page.reload();
  await poll("the filter after a reload", async () => (await page.locator("#f-status").inputValue()) === "failed" && (await page.locator("tr[data-status=failed]").count()) >= 3);
  await shot(page, "05-deliveries-failed-filter");

  step = "open the failed delivery: payload and error are visible, and escaped";
  await page.locator(`tr[data-id="${FAILED_DELIVERY}"] a`).first().click();
  await page.locator(".callout-failed").waitFor();
  await textMatches(page.locator(".callout-failed"), /HTTP 500/, "the failure callout with the error");
  const payload = await textMatches(page.locator("pre.json"), /"name"/, "the payload");
  assert(payload.includes('"<img src=x onerror=\\"window.__xss=1\\">"'), "the HTML in the payload is shown as text");
  assert(payload.includes('"<script>window.__xss=2</script>"'), "the script in the payload is shown as text");
  assert(payload.includes("12345678901234567890"), "a 64-bit number is shown exactly as sent");
  assert((await page.locator("pre.json img, pre.json script").count()) === 0, "no element was made from the payload");
  await textMatches(page.locator(".attempt").first(), /<b>upstream exploded<\/b>/, "the response body, as text");
  assert((await page.locator(".attempt b").count()) === 0, "the response body made no element");
  await noViolations(page);
  await shot(page, "06-delivery-failed", { full: true });

  step = "the receiver recovers; Retry turns the delivery succeeded without a reload";
  await control("succeed");
  const marker = await page.evaluate(() => (window.__noReload = Math.random()));
  await page.locator("#retry").click();
  await textMatches(page.locator(".action-note"), /Retry queued/, "the retry notice");
  await poll("the delivery to become succeeded", async () => (await page.locator(".view").getAttribute("data-status")) === "succeeded", 20_000);
  await textMatches(page.locator("h1 .badge"), /succeeded/, "the status badge");
  await textMatches(page.locator(".attempt").first(), /Attempt 2[\s\S]*succeeded/, "the new attempt");
  await textMatches(page.locator(".action-note"), /Attempt 2 succeeded/, "the retry's outcome");
  assert((await page.evaluate(() => window.__noReload)) === marker, "the page was not reloaded");
  await shot(page, "07-delivery-retried", { full: true });

  step = "a new event appears at the top of the deliveries list live";
  await page.locator('.nav a[data-section="deliveries"]').click();
  await page.locator("table tbody tr").first().waitFor();
  const marker2 = await page.evaluate(() => (window.__noReload = Math.random()));
  const emitted = await api("POST", "/api/v1/events", { type: "invoice.paid", data: { invoice: "inv_live", amount: 4200 } });
  assert(emitted.status === 202, `emit answered ${emitted.status}`);
  const ev = await api("GET", `/api/v1/events/${emitted.body.id}`);
  const liveId = ev.body.deliveries[0].id;
  await poll("the live delivery row at the top", async () => (await page.locator("tbody tr").first().getAttribute("data-id")) === liveId);
  await poll("the live row to turn succeeded", async () => (await page.locator(`tr[data-id="${liveId}"]`).getAttribute("data-status")) === "succeeded");
  assert((await page.evaluate(() => window.__noReload)) === marker2, "the page was not reloaded");
  await shot(page, "08-deliveries-live");

  step = "the overview updates live: a new delivery is counted without a reload";
  await page.locator('.nav a[data-section="overview"]').click();
  await poll("the overview's chart", async () => Number(await page.locator("#overview-outcomes").getAttribute("data-total")) > 0);
  const before = Number(await page.locator("#overview-outcomes").getAttribute("data-total"));
  const marker3 = await page.evaluate(() => (window.__noReload = Math.random()));
  const more = await api("POST", "/api/v1/events", { type: "invoice.paid", data: { invoice: "inv_overview", amount: 1 } });
  assert(more.status === 202, `emit answered ${more.status}`);
  await poll("the chart to count the new delivery", async () => Number(await page.locator("#overview-outcomes").getAttribute("data-total")) > before, 20_000);
  // The disabled webhook's delivery waits: the queue chart shows the alert loop's samples of it.
  await poll("the queue chart to show pending deliveries", async () => Number(await page.locator("#overview-queue").getAttribute("data-total")) >= 1, 30_000);
  assert((await page.evaluate(() => window.__noReload)) === marker3, "the page was not reloaded");

  step = "the dead-letter queue: a retry per row and a bulk retry for one webhook";
  await page.locator('.nav a[data-section="dlq"]').click();
  await page.locator(`tr[data-id="${DLQ_ROW_DELIVERY}"]`).waitFor();
  await shot(page, "09-dlq");
  await page.locator(`tr[data-id="${DLQ_ROW_DELIVERY}"] button[data-action=retry]`).click();
  await poll("the retried row to succeed", async () => /succeeded/.test(await page.locator(`tr[data-id="${DLQ_ROW_DELIVERY}"]`).innerText()));
  await page.locator("#dlq-webhook").selectOption(FAILING_WEBHOOK);
  await page.locator("#bulk-retry").waitFor();
  await shot(page, "10-dlq-webhook");
  await page.locator("#bulk-retry").click();
  await page.locator("dialog[open]").waitFor();
  await page.locator("dialog[open]").getByRole("button", { name: "Retry all" }).click();
  await textMatches(page.locator("#bulk-result"), /Queued 1 delivery for retry/, "the bulk result");
  await poll("every queued row to succeed", async () => {
    const rows = await page.locator("tbody tr").allInnerTexts();
    return rows.length > 0 && rows.every((t) => /succeeded/.test(t));
  }, 20_000);
  await shot(page, "11-dlq-bulk-retried");
  await poll("the DLQ to be empty after a reload", async () => {
    await page.reload();
    await page.locator(".empty, table").first().waitFor();
    return /dead-letter queue is empty/.test(await page.locator(".view").innerText());
  });

  step = "health badges: healthy, and disabled with its reason, in the list and on the page";
  await page.locator('.nav a[data-section="webhooks"]').click();
  await textMatches(page.locator(`tr[data-id="${GONE_WEBHOOK}"] [data-health]`), /disabled: gone/, "the gone webhook's health badge");
  assert((await page.locator(`tr[data-id="${GONE_WEBHOOK}"] .badge-health-disabled`).count()) === 1, "the disabled badge's class");
  assert((await page.locator('[data-health="healthy"]').count()) >= 1, "a healthy badge");
  assert((await page.locator("tbody tr").count()) === (await page.locator("tbody tr [data-health]").count()), "every row has a health badge");
  await page.locator(`tr[data-id="${GONE_WEBHOOK}"] a`).first().click();
  await textMatches(page.locator("#webhook-health"), /disabled: gone/, "the health badge on the webhook page");
  await textMatches(page.locator(".callout-pending"), /410 Gone/, "why it is disabled");
  await shot(page, "11b-webhook-gone");

  step = "create a webhook from the form; its secret is shown once";
  await page.locator('.nav a[data-section="webhooks"]').click();
  await page.locator("#new-webhook").click();
  await page.locator("#wh-url").fill("not a url");
  await page.getByRole("button", { name: "Create webhook" }).click();
  await textMatches(page.locator(".field-error"), /./, "a field error for the URL");
  await textMatches(page.locator(".error-box"), /Request id req_/, "the request id in the error");
  await shot(page, "12-webhook-form-error");
  await pageShots(page, "webhook-new");
  await page.locator("#wh-url").fill(`${RECEIVER_URL}/from-the-form`);
  await page.locator("#wh-events").fill("member.*\ninvoice.paid");
  await page.locator("#wh-description").fill("Created by the browser test");
  await page.getByRole("button", { name: "Create webhook" }).click();
  const secret = await textMatches(page.locator("#webhook-secret"), /^whsec_[A-Za-z0-9+/=]{20,}$/, "the secret");
  await page.locator("button", { hasText: "Copy secret" }).waitFor();
  await shot(page, "13-webhook-created", { full: true });
  await page.getByRole("link", { name: "Open the webhook" }).click();
  await page.locator("#toggle-active").waitFor();
  assert(!(await page.content()).includes(secret), "the secret is not shown again");

  step = "pause and resume";
  await page.locator("#toggle-active").click();
  await textMatches(page.locator("h1 .badge"), /paused/, "the paused badge");
  await textMatches(page.locator("#toggle-active"), /Resume/, "the Resume button");
  await shot(page, "14-webhook-paused");
  await page.locator("#toggle-active").click();
  await textMatches(page.locator("h1 .badge"), /active/, "the active badge");

  step = "send a test and see the attempt";
  await page.locator("#send-test").click();
  await textMatches(page.locator("#test-result"), /succeeded[\s\S]*200/, "the test result");
  await poll("the stats to count the test", async () => /1\s*attempts/.test(await page.locator(".stats").innerText()));
  await poll("the webhook's chart to count the test", async () => Number(await page.locator("#webhook-chart-outcomes").getAttribute("data-total")) === 1);
  await page.locator("#webhook-chart-latency canvas").first().waitFor();
  await page.locator("#webhook-chart-success canvas").first().waitFor();
  assert((await page.locator("#webhook-chart-queue").count()) === 0, "no queue chart for one webhook");
  await page.locator("#stats-range-7d").click();
  await poll("the webhook's week", async () => (await page.locator("#webhook-chart-outcomes").getAttribute("data-points")) === "168" && /1\s*attempts/.test(await page.locator(".stats").innerText()));
  await page.locator("#stats-range-1h").click();
  await shot(page, "15-webhook-detail", { full: true });

  step = "delete with confirmation";
  await page.locator("#delete-webhook").click();
  await page.locator("dialog[open]").getByRole("button", { name: "Cancel" }).click();
  assert((await page.locator("dialog[open]").count()) === 0, "cancel closes the dialog");
  await page.locator("#delete-webhook").click();
  await page.locator("dialog[open]").getByRole("button", { name: "Delete webhook" }).click();
  await poll("the webhooks list", async () => /#\/webhooks$/.test(page.url()));
  await page.locator("table tbody tr").first().waitFor();
  assert(!(await page.locator("table").innerText()).includes("from-the-form"), "the deleted webhook is gone");
  await shot(page, "16-webhooks");
  // The list's own picture, without the deletion's notice over it.
  for (const close of await page.locator(".notice-close").all()) await close.click();
  await pageShots(page, "webhooks");

  step = "events and an event's detail";
  await page.locator('.nav a[data-section="events"]').click();
  await page.locator("table tbody tr").first().waitFor();
  await shot(page, "17-events");
  await page.locator("tbody tr a", { hasText: "member.created" }).first().click();
  await page.locator("pre.json").waitFor();
  await page.locator("section table tbody tr").first().waitFor();
  await noViolations(page);
  await shot(page, "18-event-detail", { full: true });

  step = "sources and a requests log";
  await page.locator('.nav a[data-section="sources"]').click();
  await page.locator(`tr[data-id="${SOURCE_ID}"] a`).click();
  await poll("accepted and rejected requests", async () => (await page.locator("tr.row-accepted").count()) >= 1 && (await page.locator("tr.row-rejected").count()) >= 1);
  await shot(page, "19-source-requests", { full: true });

  await manageScenarios(page);

  step = "a narrow screen (380 px)";
  await page.setViewportSize({ width: 380, height: 800 });
  await page.locator('.nav a[data-section="deliveries"]').click();
  await page.locator("table tbody tr").first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the page is ${overflow}px wider than a 380px screen`);
  await shot(page, "20-deliveries-narrow");
  await page.goto(`${BASE}/#/deliveries/${FAILED_DELIVERY}`);
  await page.locator("pre.json").waitFor();
  const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow2 <= 0, `the delivery page is ${overflow2}px wider than a 380px screen`);
  await shot(page, "21-delivery-narrow", { full: true });
  await page.setViewportSize({ width: 1280, height: 860 });

  step = "dark mode";
  await page.emulateMedia({ colorScheme: "dark" });
  await page.goto(`${BASE}/#/deliveries/${FAILED_DELIVERY}`);
  await page.locator("pre.json").waitFor();
  await shot(page, "22-delivery-dark", { full: true });
  await page.goto(`${BASE}/#/deliveries`);
  await page.locator("table tbody tr").first().waitFor();
  await shot(page, "22-deliveries-dark");
  await page.emulateMedia({ colorScheme: "light" });

  step = "keyboard: Tab reaches the navigation with a visible focus ring";
  await page.locator("body").click({ position: { x: 1, y: 300 } });
  await page.keyboard.press("Tab");
  let focusedNav = false;
  for (let i = 0; i < 12 && !focusedNav; i++) {
    focusedNav = await page.evaluate(() => !!document.activeElement && !!document.activeElement.closest(".nav"));
    if (!focusedNav) await page.keyboard.press("Tab");
  }
  assert(focusedNav, "Tab reaches the navigation");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert(outline !== "none", "the focused link has an outline");

  step = "sign out revokes the session";
  const token = await page.evaluate(() => sessionStorage.getItem("hookrelay.token"));
  await signOut(page);
  assert((await page.evaluate(() => sessionStorage.getItem("hookrelay.token"))) === null, "the token is forgotten");
  const after = await fetch(`${BASE}/api/v1/deliveries`, { headers: { Authorization: `Bearer ${token}` } });
  assert(after.status === 401, `the old session token answers ${after.status}, not 401`);
  await shot(page, "23-signed-out");

  step = "an expired session returns to sign-in with a message";
  await signIn(page, EMAIL, PASSWORD);
  await page.evaluate(() => sessionStorage.setItem("hookrelay.token", `hrs_${"A".repeat(43)}`));
  await page.reload();
  await textMatches(page.locator(".signin-message"), /session has expired/, "the expiry message");

  step = "an API key works for operators";
  await page.getByText("Use an API key instead").click();
  await page.locator("#api-key").fill(API_KEY);
  await page.getByRole("button", { name: "Use this key" }).click();
  await textMatches(page.locator(".identity"), /API key/, "the API-key identity");
  await signOut(page);

  step = "a viewer sees no write buttons";
  const viewerContext = await newContext();
  const viewer = await newPage(viewerContext);
  await signIn(viewer, VIEWER_EMAIL, VIEWER_PASSWORD);
  await textMatches(viewer.locator(".identity"), /viewer/, "the viewer role");
  await viewer.goto(`${BASE}/#/deliveries/${FAILED_DELIVERY}`);
  await viewer.locator("pre.json").waitFor();
  assert((await viewer.locator("#retry").count()) === 0, "no Retry button for a viewer");
  await shot(viewer, "24-viewer-delivery");
  await viewer.goto(`${BASE}/#/webhooks`);
  await viewer.locator("table tbody tr").first().waitFor();
  assert((await viewer.locator("#new-webhook").count()) === 0, "no New webhook button for a viewer");
  await viewer.locator("tbody tr a").first().click();
  await viewer.locator(".stats .stat").first().waitFor();
  assert((await viewer.locator("#toggle-active, #send-test, #delete-webhook").count()) === 0, "no webhook actions for a viewer");
  await viewer.goto(`${BASE}/#/dlq`);
  await viewer.locator(".empty, table").first().waitFor();
  assert((await viewer.locator("button[data-action=retry], #bulk-retry").count()) === 0, "no DLQ retry for a viewer");
  await signOut(viewer);

  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
}

// ---- Editing everything: webhooks, sources, the event catalog, settings -------------------

async function manageScenarios(page) {
  const hooks = (await api("GET", "/api/v1/webhooks?limit=1000")).body.data;
  const analytics = hooks.find((w) => w.description === "Analytics");
  assert(analytics, "the seeded Analytics webhook");

  step = "event types: create one (the API's error beside its field), see its schema and example";
  await page.locator('.nav a[data-section="event-types"]').click();
  await page.locator("#new-event-type").click();
  await page.locator("#et-name").fill("order.paid");
  await page.locator("#et-description").fill("An order was paid");
  await page.locator("#et-schema").fill('{"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}');
  await page.locator("#et-example").fill('{"amount": "not a number"}');
  await page.locator("#et-save").click();
  await textMatches(page.locator('[data-field="example"] .field-error'), /./, "the example's error beside its field");
  await textMatches(page.locator(".error-box"), /Request id req_/, "the request id in the error");
  await page.locator("#et-example").fill('{"amount": 4200, "order": "ord_1"}');
  await page.locator("#et-save").click();
  await textMatches(page.locator("h1"), /order\.paid/, "the new type's page");
  await textMatches(page.locator("#example-title + pre"), /"amount": 4200/, "the example");
  await textMatches(page.locator("#schema-title + pre"), /"required"/, "the schema");
  await page.locator("#edit-event-type").click();
  await page.locator("#et-description").fill("An order was paid in full");
  await page.locator("#et-save").click();
  await textMatches(page.locator(".page-head .muted"), /paid in full/, "the edited description");
  await page.locator('.nav a[data-section="event-types"]').click();
  await page.locator('tr[data-id="order.paid"]').waitFor();
  await pageShots(page, "event-types");

  step = "edit a webhook: the API's error beside the field, then every field saved and shown";
  await page.goto(`${BASE}/#/webhooks/${analytics.id}`);
  await page.locator("#edit-webhook").click();
  await page.locator("#wh-url").fill("ftp://nope");
  await page.locator("#wh-save").click();
  await textMatches(page.locator('[data-field="url"] .field-error'), /./, "the URL's error beside the field");
  await page.locator("#wh-url").fill(analytics.url);
  await page.locator("#wh-description").fill("Analytics (edited)");
  await page.locator("#wh-events").fill("order.*");
  await page.locator("#wh-events-add").click();
  await textMatches(page.locator("#wh-events-matches"), /order\.paid/, "the catalog types the patterns match");
  await page.locator("#wh-headers-add").click();
  await page.locator("#wh-headers .pair-key").last().fill("X-Team");
  await page.locator("#wh-headers .pair-value").last().fill("growth");
  await page.locator("#wh-retry-mode").selectOption("custom");
  await page.locator("#wh-retry").fill("1, 2");
  await page.locator("#wh-rate").fill("25");
  await page.locator("#wh-filter").fill('{"data.amount": {"$gte": 100}}');
  await page.locator("#wh-ordered").check();
  await shot(page, "page-webhook-edit-filled", { full: true });
  await page.locator("#wh-save").click();
  await poll("the webhook page after saving", async () => page.url().endsWith(`#/webhooks/${analytics.id}`));
  await textMatches(page.locator(".fields"), /Analytics \(edited\)[\s\S]*X-Team[\s\S]*25 per second/, "the saved fields on the page");
  await textMatches(page.locator(".fields"), /Ordered\s*yes/, "ordered on the page");
  const saved = (await api("GET", `/api/v1/webhooks/${analytics.id}`)).body;
  assert(saved.events.includes("order.*") && saved.events.includes("member.*"), `events saved: ${saved.events}`);
  assert(saved.headers["X-Team"] === "growth", "the header saved");
  assert(saved.rate_limit_per_sec === 25 && saved.ordered === true, "rate limit and ordered saved");
  assert(JSON.stringify(saved.retry_schedule_seconds) === "[1,2]", `retry schedule saved: ${saved.retry_schedule_seconds}`);
  assert(saved.filter && saved.filter["data.amount"], "the filter saved");
  assert(saved.url === analytics.url, "the URL unchanged");

  step = "rotate the secret: a grace period, the new secret shown once";
  await page.locator("#rotate-secret").click();
  await page.locator("dialog[open] #rotate-grace").selectOption("3600");
  await page.locator("#rotate-confirm").click();
  const rotated = await textMatches(page.locator("#rotated-secret"), /^whsec_[A-Za-z0-9+/=]{20,}$/, "the new secret");
  await textMatches(page.locator("#rotated"), /1 hour/, "the grace period");
  await shot(page, "page-webhook-rotated", { full: true });
  await page.locator("#send-test").click();
  await textMatches(page.locator("#test-result"), /succeeded[\s\S]*200/, "a test signed with the new secret");
  await page.reload();
  await page.locator("#edit-webhook").waitFor();
  assert(!(await page.content()).includes(rotated), "the rotated secret is not shown again");
  await pageShots(page, "webhook");

  step = "templates of a Slack webhook with a live preview from the catalog's example";
  const slack = await api("POST", "/api/v1/webhooks", { url: `${RECEIVER_URL}/slack`, kind: "slack", events: ["order.*"], description: "Slack #sales" });
  assert(slack.status === 201, `slack webhook answered ${slack.status}`);
  await page.goto(`${BASE}/#/webhooks/${slack.body.id}/edit`);
  await page.locator("#wh-templates-add").click();
  await page.locator("#wh-templates .pair-key").last().fill("order.*");
  await page.locator("#wh-preview-type").selectOption("order.paid");
  await page.locator("#wh-templates .pair-value").last().fill("Paid {{ data.amount }} for {{ data.order }}");
  await textMatches(page.locator("#wh-preview"), /"text": "Paid 4200 for ord_1"/, "the live preview");
  await page.locator("#wh-templates .pair-value").last().fill("Paid {{ data.amount ");
  await textMatches(page.locator("#wh-preview"), /fail to render/, "a broken template's preview error");
  await page.locator("#wh-templates .pair-value").last().fill("Paid {{ data.amount }} for {{ data.order }}");
  await textMatches(page.locator("#wh-preview"), /"text": "Paid 4200 for ord_1"/, "the preview again");
  await pageShots(page, "webhook-edit");
  await page.locator("#wh-save").click();
  await poll("the slack webhook page", async () => page.url().endsWith(`#/webhooks/${slack.body.id}`));
  const slackSaved = (await api("GET", `/api/v1/webhooks/${slack.body.id}`)).body;
  assert(slackSaved.templates["order.*"] === "Paid {{ data.amount }} for {{ data.order }}", "the template saved");

  step = "emit a test event from the type's example; it is delivered";
  await page.goto(`${BASE}/#/event-types/order.paid`);
  await page.locator("#emit-example").click();
  await textMatches(page.locator("#emit-result"), /Event accepted[\s\S]*2 deliveries/, "the emitted event and its deliveries");
  await pageShots(page, "event-type");
  await page.locator("#emitted-event").click();
  await poll("both deliveries to succeed", async () => {
    const t = await page.locator("section table tbody").innerText().catch(() => "");
    return (t.match(/succeeded/g) || []).length === 2;
  }, 20_000);

  step = "create a source, see its setup steps, and see an inbound request";
  await page.locator('.nav a[data-section="sources"]').click();
  await page.locator("#new-source").click();
  await page.locator("#src-name").fill("Bad Name!");
  await page.locator("#src-secret").fill("browser-secret-123");
  await page.locator("#src-save").click();
  await textMatches(page.locator('[data-field="name"] .field-error'), /./, "the name's error beside the field");
  await page.locator("#src-name").fill("gh-browser");
  await page.locator("#src-save").click();
  const ingest = await textMatches(page.locator("#src-ingest-url"), /\/ingest\/gh-browser$/, "the ingest URL");
  await textMatches(page.locator("#setup-steps"), /Payload URL[\s\S]*application\/json[\s\S]*Secret/, "GitHub's setup steps");
  await page.locator("#setup-steps button", { hasText: "Copy URL" }).waitFor();
  await pageShots(page, "source-created");
  const ping = '{"zen": "Design for failure.", "hook_id": 2}';
  const answer = await fetch(ingest, {
    method: "POST",
    headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "browser-1", "x-hub-signature-256": `sha256=${createHmac("sha256", "browser-secret-123").update(ping).digest("hex")}` },
    body: ping,
  });
  assert(answer.status === 202, `the ingest URL answered ${answer.status}`);
  await page.locator("#open-source").click();
  await poll("the accepted request in the log", async () => (await page.locator("tr.row-accepted").count()) === 1);
  await textMatches(page.locator("tr.row-accepted"), /github\.ping/, "its event type");
  await pageShots(page, "source");

  step = "edit the source, then delete it after a confirmation";
  await page.locator("#edit-source").click();
  await page.locator("#src-rate").fill("50");
  await page.locator("#src-save").click();
  await textMatches(page.locator(".fields"), /50 requests per minute/, "the edited rate limit");
  await page.locator("#delete-source").click();
  await page.locator("dialog[open]").getByRole("button", { name: "Delete source" }).click();
  await poll("the sources list", async () => /#\/sources$/.test(page.url()));
  await page.locator("table tbody tr").first().waitFor();
  assert(!(await page.locator("table").innerText()).includes("gh-browser"), "the deleted source is gone");
  await pageShots(page, "sources");

  step = "settings: create an API key (shown once) and revoke it";
  await page.locator('.nav a[data-section="settings"]').click();
  await page.locator("#key-name").fill("ci-publisher");
  await page.locator("#key-role").selectOption("publisher");
  await page.locator("#key-create").click();
  const key = await textMatches(page.locator("#new-key"), /^hr_[0-9A-Za-z]{32,}$/, "the new key");
  const me = await fetch(`${BASE}/api/v1/me`, { headers: { Authorization: `Bearer ${key}` } });
  assert(me.status === 200 && (await me.json()).role === "publisher", "the key works with its role");
  await textMatches(page.locator("#quotas"), /Events per minute[\s\S]*Webhooks/, "the quotas and usage");
  await pageShots(page, "settings");
  await page.locator("#keys tr", { hasText: "ci-publisher" }).locator("button[data-action=revoke]").click();
  await page.locator("dialog[open]").getByRole("button", { name: "Revoke key" }).click();
  await poll("the key's row to go", async () => (await page.locator("#keys tr", { hasText: "ci-publisher" }).count()) === 0);
  const revoked = await fetch(`${BASE}/api/v1/me`, { headers: { Authorization: `Bearer ${key}` } });
  assert(revoked.status === 401, `the revoked key answers ${revoked.status}`);

  step = "settings: add a user with a restricted role";
  await page.locator("#user-email").fill("editor@example.com");
  await page.locator("#user-password").fill("short");
  await page.locator("#user-create").click();
  await textMatches(page.locator('[data-field="password"] .field-error'), /./, "the password's error beside the field");
  await page.locator("#user-password").fill("editor-password-1234");
  await page.locator("#user-role").selectOption("editor");
  await page.locator("#user-create").click();
  await page.locator("#users tr", { hasText: "editor@example.com" }).waitFor();

  step = "sign in as the editor: not offered keys, users or tenants";
  const editorContext = await newContext();
  const editor = await newPage(editorContext);
  await signIn(editor, "editor@example.com", "editor-password-1234");
  await textMatches(editor.locator(".identity"), /editor/, "the editor role");
  await editor.goto(`${BASE}/#/settings`);
  await textMatches(editor.locator("#access-note"), /cannot change them/, "why keys and users are not offered");
  await editor.locator("#quotas table").waitFor();
  assert((await editor.locator("#key-form, #user-form, #tenants, #quota-form").count()) === 0, "no key, user, tenant or quota forms for an editor");
  await shot(editor, "page-settings-editor", { full: true });
  await editor.goto(`${BASE}/#/webhooks/${analytics.id}`);
  await editor.locator("#edit-webhook").waitFor();
  await signOut(editor);
  await editorContext.close();

  step = "a viewer is not offered editing, rotating, creating or emitting";
  const viewerContext = await newContext();
  const viewer = await newPage(viewerContext);
  await signIn(viewer, VIEWER_EMAIL, VIEWER_PASSWORD);
  await viewer.goto(`${BASE}/#/webhooks/${analytics.id}`);
  await viewer.locator(".stats .stat").first().waitFor();
  assert((await viewer.locator("#edit-webhook, #rotate-secret").count()) === 0, "no edit or rotate for a viewer");
  await viewer.goto(`${BASE}/#/event-types/order.paid`);
  await viewer.locator("#example-title").waitFor();
  assert((await viewer.locator("#emit-example, #edit-event-type, #delete-event-type").count()) === 0, "no emit or edit of a type for a viewer");
  await viewer.goto(`${BASE}/#/sources`);
  await viewer.locator("table tbody tr").first().waitFor();
  assert((await viewer.locator("#new-source").count()) === 0, "no New source for a viewer");
  await viewer.goto(`${BASE}/#/settings`);
  await viewer.locator("#quotas table").waitFor();
  assert((await viewer.locator("#key-form, #user-form").count()) === 0, "no key or user forms for a viewer");
  await signOut(viewer);
  await viewerContext.close();

  step = "a server admin manages tenants and switches between them (X-Tenant-Id)";
  const adminContext = await newContext();
  const admin = await newPage(adminContext);
  await admin.goto(`${BASE}/`);
  await admin.getByText("Use an API key instead").click();
  await admin.locator("#api-key").fill(API_KEY);
  await admin.getByRole("button", { name: "Use this key" }).click();
  await textMatches(admin.locator(".identity"), /server admin/, "the server-admin badge");
  await admin.locator('.nav a[data-section="settings"]').click();
  await admin.locator("#tenant-name").fill("acme");
  await admin.locator("#tenant-create").click();
  await admin.locator("#tenants tr", { hasText: "acme" }).waitFor();
  await admin.locator("#q-webhooks").fill("30");
  await admin.locator("#q-save").click();
  await textMatches(admin.locator('#quotas tr[data-id="webhooks"]'), /30[\s\S]*of 30/, "the saved webhook quota and its usage");
  await pageShots(admin, "settings-server-admin");
  await admin.locator("#tenants tr", { hasText: "acme" }).locator("button[data-action=switch-tenant]").click();
  await textMatches(admin.locator(".identity"), /tenant\s+acme/, "the switched tenant in the header");
  await admin.locator('.nav a[data-section="webhooks"]').click();
  await textMatches(admin.locator(".view"), /No webhooks yet/, "the other tenant's (empty) webhooks");
  await admin.locator('.nav a[data-section="settings"]').click();
  const home = (await api("GET", "/api/v1/me")).body.tenant_id;
  await admin.locator("#tenant-switch").selectOption(home);
  await textMatches(admin.locator(".identity"), /tenant\s+default/, "back on the default tenant");
  await adminContext.close();

  step = "the phone layout's navigation shows every section";
  await page.setViewportSize({ width: 380, height: 800 });
  await page.goto(`${BASE}/#/settings`);
  await page.locator("#quotas table").waitFor();
  const hidden = await page.evaluate(() =>
    [...document.querySelectorAll(".nav a")].filter((a) => {
      const r = a.getBoundingClientRect();
      return r.width === 0 || r.right > window.innerWidth || r.left < 0;
    }).map((a) => a.textContent),
  );
  assert(hidden.length === 0, `navigation links off a 380px screen: ${hidden.join(", ")}`);
  await shot(page, "page-nav-phone");
  await page.setViewportSize({ width: 1280, height: 860 });
}

await main("dashboard.spec", run, () => step);
