// Helpers shared by the dashboard's Chromium specs (dashboard.spec.mjs, deliveries.spec.mjs):
// the HR_* settings, polling with deadlines, the API as an operator, contexts and pages that
// record console errors and CSP violations, sign-in, screenshots, and the run/fail wrapper.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set (tests/it/dashboard.rs sets it)`);
  return v;
}

export const BASE = env("HR_BASE_URL");
export const API_KEY = env("HR_API_KEY");
export const SHOTS = env("HR_SCREENSHOTS");
export const CHROMIUM = process.env.HR_CHROMIUM || "/usr/bin/chromium";
export const TIMEOUT = 15_000;
export const DESKTOP = { width: 1280, height: 860 };

mkdirSync(SHOTS, { recursive: true });

/** Polls `fn` every 50 ms until it answers something truthy (answered), or throws at the deadline. */
export async function poll(what, fn, timeout = TIMEOUT) {
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
export async function textMatches(locator, re, what, timeout) {
  return poll(
    `${what} to match ${re}`,
    async () => {
      const t = (await locator.count()) ? await locator.first().innerText() : "";
      return re.test(t) ? t : false;
    },
    timeout,
  );
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** The API with the server admin's key: `{status, body}`. */
export async function api(method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** A screenshot of the viewport, or of the whole page for detail views (`full`). */
export async function shot(page, name, { full = false } = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: full });
}

// ---- The browser --------------------------------------------------------------------------

/** Console errors and uncaught exceptions of every page made by `newPage`. */
export const consoleErrors = [];
export let browser = null;

export async function launch() {
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
  return browser;
}

export async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (msg) => {
    // A 401/404/429 answer is logged by Chromium as a failed resource; those are expected here.
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(`uncaught: ${err.message}`));
  return page;
}

export async function newContext(viewport = DESKTOP, options = {}) {
  const context = await browser.newContext({ viewport, reducedMotion: "reduce", ...options });
  // Records CSP violations (a Playwright init script runs outside the page's CSP).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return context;
}

export async function noViolations(page) {
  const csp = await page.evaluate(() => window.__csp || []);
  assert(csp.length === 0, `CSP violations: ${csp.join("; ")}`);
  assert((await page.evaluate(() => window.__xss)) === undefined, "a payload ran as script");
}

export async function signIn(page, email, password) {
  await page.goto(`${BASE}/`);
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator(".identity").waitFor();
  await textMatches(page.locator(".identity"), new RegExp(email.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the signed-in identity");
}

export async function signOut(page) {
  await page.locator("#sign-out").click();
  await textMatches(page.locator(".signin-message"), /signed out/i, "the signed-out message");
}

export async function liveIndicator(page) {
  await poll("the live indicator to say Live", async () => (await page.locator(".live").getAttribute("data-state")) === "live");
}

/**
 * Light, dark, and a phone screen (light and dark) of the current page, named by page; fails
 * when the page is wider than the phone. `full: false` keeps to the viewport (a modal dialog's
 * backdrop covers only that).
 */
export async function pageShots(page, name, { phone = { width: 380, height: 800 }, full = true } = {}) {
  const desktop = page.viewportSize();
  await shot(page, `page-${name}-light`, { full });
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, `page-${name}-dark`, { full });
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize(phone);
  await shot(page, `page-${name}-phone`, { full });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() => [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map((e) => `${e.tagName}.${e.className}`).join(" "));
  assert(overflow <= 0, `${name} is ${overflow}px wider than a ${phone.width}px screen (${wide})`);
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, `page-${name}-phone-dark`, { full });
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize(desktop || DESKTOP);
}

/**
 * Runs a spec: "all steps passed" on success; otherwise the step that failed (`currentStep()`),
 * the error, the console errors and a screenshot of every open page; then exits with its code.
 */
export async function main(tag, run, currentStep) {
  let code = 0;
  try {
    await run();
    console.log(`[${tag}] all steps passed`);
  } catch (err) {
    code = 1;
    console.error(`[${tag}] FAILED at step: ${currentStep()}\n${err && err.stack ? err.stack : err}`);
    if (consoleErrors.length) console.error(`[${tag}] console errors: ${consoleErrors.join(" | ")}`);
    try {
      const pages = browser ? browser.contexts().flatMap((c) => c.pages()) : [];
      for (const [i, p] of pages.entries()) await p.screenshot({ path: join(SHOTS, `failure-${tag}-${i}.png`), fullPage: true });
    } catch {
      // The screenshot is a help, not the result.
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.exit(code);
}
