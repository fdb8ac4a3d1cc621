// Portal links in Debian's Chromium (playwright-core): an admin makes one in Settings; opened, it
// shows only the tenant's deliveries, dead letters and webhooks, with the link's role, no route
// to settings or another tenant, and its token leaves the address; revoked, it says so.
// Started by tests/it/portal.rs, which seeds the server.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set (tests/it/portal.rs sets it)`);
  return v;
}

const BASE = env("HR_BASE_URL");
const API_KEY = env("HR_API_KEY");
const OURS = env("HR_OUR_WEBHOOK_URL");
const THEIRS = env("HR_OTHER_WEBHOOK_URL");
const SHOTS = env("HR_SCREENSHOTS");
const CHROMIUM = process.env.HR_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15_000;

mkdirSync(SHOTS, { recursive: true });
let step = "start";
const log = (msg) => console.log(`[portal.spec] ${msg}`);

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

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

const text = (page, selector) => poll(`text of ${selector}`, async () => ((await page.locator(selector).count()) ? page.locator(selector).first().innerText() : false));

async function run() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  const errors = [];
  try {
    step = "an admin creates a link in Settings";
    const adminContext = await browser.newContext({ viewport: { width: 1280, height: 860 }, reducedMotion: "reduce" });
    const admin = await adminContext.newPage();
    admin.setDefaultTimeout(TIMEOUT);
    admin.on("pageerror", (err) => errors.push(`uncaught (admin): ${err.message}`));
    await admin.goto(`${BASE}/`);
    await admin.getByText("Use an API key instead").click();
    await admin.locator("#api-key").fill(API_KEY);
    await admin.getByRole("button", { name: "Use this key" }).click();
    await admin.locator(".identity").waitFor();
    await admin.goto(`${BASE}/#/settings`);
    await admin.locator("#portal-form").waitFor();
    await admin.locator("#portal-role").selectOption("editor");
    await admin.locator("#portal-create").click();
    const url = await text(admin, "#new-portal-link");
    assert(url.startsWith(`${BASE}/portal#token=hrp_`), `the link is shown once: ${url}`);
    await poll("the link listed", async () => (await admin.locator("#portal-links tbody tr").count()) === 1);
    await admin.locator("#portal-links").screenshot({ path: join(SHOTS, "settings-portal-links.png") });
    const LINK = url.slice(BASE.length);

    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, reducedMotion: "reduce" });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));

    step = "open the link";
    await page.goto(BASE + LINK);
    await page.locator(".identity").waitFor();
    const identity = await text(page, ".identity");
    assert(/Portal/.test(identity) && /editor/.test(identity), `the identity says portal and editor: ${identity}`);
    assert(!page.url().includes("hrp_"), `the token left the address: ${page.url()}`);

    step = "navigation";
    const sections = await page.locator("nav a").evaluateAll((as) => as.map((a) => a.dataset.section));
    assert(JSON.stringify(sections) === JSON.stringify(["deliveries", "dlq", "webhooks"]), `only deliveries, dead letters and webhooks: ${sections}`);
    const links = await page.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href") || ""));
    assert(!links.some((h) => /settings|sources|tenants|keys|users/.test(h)), `no link to settings or sources: ${links}`);
    await page.screenshot({ path: join(SHOTS, "portal-deliveries-light.png") });

    step = "webhooks of this tenant only";
    await page.goto(`${BASE}/portal#/webhooks`);
    await poll("our webhook listed", async () => (await page.locator("main").innerText()).includes(OURS));
    const main = await page.locator("main").innerText();
    assert(!main.includes(THEIRS), "another tenant's webhook is not shown");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(SHOTS, "portal-webhooks-dark.png") });
    await page.emulateMedia({ colorScheme: "light" });

    step = "no route to settings or sources";
    for (const route of ["settings", "sources", "tenants"]) {
      await page.goto(`${BASE}/portal#/${route}`);
      await poll(`#/${route} refused`, async () => /not found/i.test(await page.locator("main").innerText()));
    }

    step = "phone";
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p2 = await phone.newPage();
    await p2.goto(BASE + LINK);
    await p2.locator(".identity").waitFor();
    await p2.screenshot({ path: join(SHOTS, "portal-phone.png") });
    await phone.close();

    step = "the admin revokes it";
    await admin.locator("#portal-links [data-action=revoke]").click();
    await admin.getByRole("button", { name: "Revoke link" }).click();
    await poll("the link gone from the list", async () => (await admin.locator("#portal-links tbody tr").count()) === 0);
    await page.goto(`${BASE}/portal#/deliveries`);
    await page.reload();
    const closed = await text(page, "[data-testid=portal-closed]");
    assert(/expired or was revoked/.test(closed), `the portal says the link ended: ${closed}`);
    assert((await page.locator("#email").count()) === 0, "no sign-in form in the portal");
    assert(errors.length === 0, `page errors: ${errors.join("; ")}`);
    log("all steps passed");
  } catch (e) {
    console.error(`[portal.spec] step "${step}" failed: ${e.stack || e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await run();
