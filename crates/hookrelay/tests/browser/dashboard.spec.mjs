// Drives the hookrelay dashboard in Debian's Chromium (playwright-core, no browser download).
// Started by tests/it/dashboard.rs, which seeds the server and passes everything in HR_* vars.
// Every wait polls with a deadline; a failure prints the step, saves a screenshot, exits 1.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set (tests/it/dashboard.rs sets it)`);
  return v;
}

const BASE = env("HR_BASE_URL");
const EMAIL = env("HR_EMAIL");
const PASSWORD = env("HR_PASSWORD");
const VIEWER_EMAIL = env("HR_VIEWER_EMAIL");
const VIEWER_PASSWORD = env("HR_VIEWER_PASSWORD");
const LOCKED_EMAIL = env("HR_LOCKED_EMAIL");
const MAX_FAILURES = Number(env("HR_LOGIN_MAX_FAILURES"));
const API_KEY = env("HR_API_KEY");
const CONTROL = env("HR_CONTROL_URL");
const FAILED_DELIVERY = env("HR_FAILED_DELIVERY");
const DLQ_ROW_DELIVERY = env("HR_DLQ_ROW_DELIVERY");
const FAILING_WEBHOOK = env("HR_FAILING_WEBHOOK");
const GONE_WEBHOOK = env("HR_GONE_WEBHOOK");
const RECEIVER_URL = env("HR_RECEIVER_URL");
const SOURCE_ID = env("HR_SOURCE_ID");
const SHOTS = env("HR_SCREENSHOTS");
const CHROMIUM = process.env.HR_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15_000;

mkdirSync(SHOTS, { recursive: true });

// ---- Small helpers ------------------------------------------------------------------------

let step = "start";
const log = (msg) => console.log(`[dashboard.spec] ${msg}`);

async function poll(what, fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `locator`'s text matches `re`; answers the text. */
async function textMatches(locator, re, what, timeout) {
  return poll(
    `${what} to match ${re}`,
    async () => {
      const t = (await locator.count()) ? await locator.first().innerText() : "";
      return re.test(t) ? t : false;
    },
    timeout,
  );
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

async function api(method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function control(action) {
  const r = await fetch(`${CONTROL}/${action}`, { method: "POST" });
  assert(r.ok, `control ${action} answered ${r.status}`);
}

/** A screenshot of the viewport, or of the whole page for detail views (`full`). */
async function shot(page, name, { full = false } = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: full });
}

// ---- The browser --------------------------------------------------------------------------

const consoleErrors = [];
let browser;

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (msg) => {
    // A 401/404/429 answer is logged by Chromium as a failed resource; those are expected here.
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(`uncaught: ${err.message}`));
  return page;
}

async function newContext(viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport, reducedMotion: "reduce" });
  // Records CSP violations (a Playwright init script runs outside the page's CSP).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return context;
}

async function noViolations(page) {
  const csp = await page.evaluate(() => window.__csp || []);
  assert(csp.length === 0, `CSP violations: ${csp.join("; ")}`);
  assert((await page.evaluate(() => window.__xss)) === undefined, "a payload ran as script");
}

async function signIn(page, email, password) {
  await page.goto(`${BASE}/`);
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator(".identity").waitFor();
  await textMatches(page.locator(".identity"), new RegExp(email.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the signed-in identity");
}

async function signOut(page) {
  await page.locator("#sign-out").click();
  await textMatches(page.locator(".signin-message"), /signed out/i, "the signed-out message");
}

async function liveIndicator(page) {
  await poll("the live indicator to say Live", async () => (await page.locator(".live").getAttribute("data-state")) === "live");
}

async function run() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // No --user-data-dir: Playwright refuses it here and starts every launch on a fresh,
      // empty profile of its own in a temporary folder, removed on close.
    ],
  });
  const context = await newContext();
  const page = await newPage(context);

  step = "the sign-in page loads with its security headers";
  const first = await page.goto(`${BASE}/`);
  assert(first.status() === 200, `GET / answered ${first.status()}`);
  assert(/default-src 'self'/.test(first.headers()["content-security-policy"] || ""), "GET / has a CSP");
  await page.locator("#email").waitFor();
  await shot(page, "01-sign-in");

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

  step = "deliveries are listed with their statuses";
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

let code = 0;
try {
  await run();
  log("all steps passed");
} catch (err) {
  code = 1;
  console.error(`[dashboard.spec] FAILED at step: ${step}\n${err && err.stack ? err.stack : err}`);
  if (consoleErrors.length) console.error(`[dashboard.spec] console errors: ${consoleErrors.join(" | ")}`);
  try {
    const pages = browser ? browser.contexts().flatMap((c) => c.pages()) : [];
    for (const [i, p] of pages.entries()) await p.screenshot({ path: join(SHOTS, `failure-${i}.png`), fullPage: true });
  } catch {
    // The screenshot is a help, not the result.
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
