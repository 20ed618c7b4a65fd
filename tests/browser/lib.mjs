// Shared helpers for the dashboard browser tests: Debian Chromium driven by playwright-core.
// Run by tests/e2e/browser.rs as `node --test --test-concurrency=1 tests/browser/` with BASE_URL
// pointing at a freshly started server. Every test signs up its own user, so tests are independent.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

export const BASE_URL = (process.env.BASE_URL || "").replace(/\/+$/, "");
if (!BASE_URL) throw new Error("BASE_URL must point at a running Postback (e.g. http://127.0.0.1:8080)");

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
];

/** How long one step (a click, a wait for text) may take before the test fails. */
const STEP_TIMEOUT_MS = 15_000;
/** Options for every test(): a hung page fails its test instead of hanging the suite. */
export const TEST_OPTIONS = { timeout: 120_000 };

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

const RESULTS_DIR = new URL("./test-results/", import.meta.url);

let browser;
/** One Chromium per test file; each test gets its own context (cookies, storage). */
export async function launch() {
  if (!browser) {
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
    } catch (err) {
      throw new Error(
        `could not start Chromium at ${CHROMIUM_PATH} (install Debian's chromium or set CHROMIUM_PATH): ${err.message}`,
      );
    }
  }
  return browser;
}

export async function closeBrowser() {
  if (browser) await browser.close();
  browser = undefined;
}

/**
 * Runs `fn(page)` in a fresh browser context. When it throws, a full-page screenshot and the
 * page's HTML go to tests/browser/test-results/<test name>.{png,html}, and the error says what
 * URL the page was on.
 */
export async function withPage(t, fn, viewport = DESKTOP) {
  const b = await launch();
  const context = await b.newContext({ baseURL: BASE_URL, viewport });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS * 2);
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  try {
    await fn(page);
  } catch (err) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").slice(0, 80);
    await page
      .screenshot({ path: new URL(`${name}.png`, RESULTS_DIR).pathname, fullPage: true })
      .catch(() => {});
    await page
      .content()
      .then((html) => writeFileSync(new URL(`${name}.html`, RESULTS_DIR), html))
      .catch(() => {});
    err.message += `\n  (page was at ${page.url()}; screenshot in tests/browser/test-results/${name}.png)`;
    if (pageErrors.length) err.message += `\n  (page script errors: ${pageErrors.join(" | ")})`;
    throw err;
  } finally {
    await context.close();
  }
}

export function uniqueEmail(tag = "u") {
  return `${tag}-${randomBytes(6).toString("hex")}@example.com`;
}

export const PASSWORD = "correct horse battery 1";

/**
 * Clicks something that submits a form or follows a link, and waits until the next page has
 * loaded (the server answers form posts with a redirect, often back to the same URL).
 */
export async function clickAndLoad(page, locator) {
  await Promise.all([page.waitForEvent("load"), locator.click()]);
}

/** Signs up a fresh unique user through the form; ends on the overview (`/`). Returns the email. */
export async function signUp(page, email = uniqueEmail()) {
  await page.goto("/signup");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Workspace name", { exact: true }).fill(`Workspace ${email.split("@")[0]}`);
  await clickAndLoad(page, page.getByRole("button", { name: "Create account" }));
  await page.waitForURL((url) => url.pathname === "/");
  return email;
}

/** Logs in through the form; does not check where it lands. */
export async function logIn(page, email, password = PASSWORD) {
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await clickAndLoad(page, page.getByRole("button", { name: "Log in" }));
}

/** Submits the "Add domain" form on /domains; ends on whatever page the server answers with. */
export async function addDomain(page, hostname) {
  await page.goto("/domains");
  await page.getByLabel("Hostname", { exact: true }).fill(hostname);
  await clickAndLoad(page, page.getByRole("button", { name: "Add domain" }));
}

/** The link to a domain's keys page in the /domains table (call while on /domains). */
export function domainLink(page, hostname) {
  return page.locator("table").getByRole("link", { name: hostname, exact: true });
}

/** Adds a domain and opens its Inbound Integration Keys page. */
export async function openNewDomainKeys(page, hostname) {
  await addDomain(page, hostname);
  await page.goto("/domains");
  await clickAndLoad(page, domainLink(page, hostname));
  await page.waitForURL(/\/domains\/[^/]+\/keys$/);
  await page.getByRole("heading", { level: 1, name: hostname, exact: true }).waitFor();
}

/** Submits the create-key form on the current keys page (any outcome). */
export async function submitKey(page, name) {
  await page.getByLabel("Name", { exact: true }).fill(name);
  await clickAndLoad(page, page.getByRole("button", { name: "Create Inbound Integration Key" }));
}

/** Creates a key on the current keys page and returns its full value from #new-key-value. */
export async function createKey(page, name) {
  await submitKey(page, name);
  const value = (await page.locator("#new-key #new-key-value").textContent()).trim();
  if (!/^cc_[0-9a-f]{40}$/.test(value)) throw new Error(`new key has the wrong format: ${JSON.stringify(value)}`);
  return value;
}

/** The row of the keys table for the key with this (unique) name. */
export function keyRow(page, name) {
  return page.locator("#keys tr[data-key-id]").filter({ has: page.getByRole("cell", { name, exact: true }) });
}

/** The cells of a key row, in the documented order. */
export function keyCells(row) {
  const td = (i) => row.locator("td").nth(i);
  return {
    name: td(0), masked: td(1), created: td(2), lastEvent: td(3), lastUsed: td(4), status: td(5), actions: td(6),
  };
}

export async function text(locator) {
  return ((await locator.textContent()) ?? "").replace(/\s+/g, " ").trim();
}

/** The flash error on the current page, waited for, with the given text. */
export async function expectFlashError(page, message) {
  await page.locator(".flash.flash-error", { hasText: message }).waitFor();
}

/** Sends one conversion event to the inbound endpoint with this key. */
export async function sendEvent(
  key,
  body = { email: "customer@example.com", event: "purchase", value: 99.99, currency: "USD" },
) {
  const res = await fetch(`${BASE_URL}/__cc/inbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CC-Api-Key": key },
    body: JSON.stringify(body),
  });
  const raw = await res.text();
  let json;
  try {
    json = JSON.parse(raw);
  } catch {
    json = { unparsed: raw };
  }
  return { status: res.status, body: json };
}

/**
 * The first mail to `to` whose subject contains `subject`, as the real SMTP server of
 * tests/e2e/browser.rs received it (MAIL_LOG: one JSON line per mail). Waits up to 20 s.
 * `skip` mails matching first are passed over (for a second mail of the same kind).
 */
export async function waitForMail(to, subject, skip = 0) {
  const log = process.env.MAIL_LOG;
  if (!log) throw new Error("MAIL_LOG must name the SMTP server's log (tests/e2e/browser.rs sets it)");
  const { readFileSync, existsSync } = await import("node:fs");
  const deadline = Date.now() + 20_000;
  for (;;) {
    const mails = existsSync(log)
      ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
      : [];
    const found = mails.filter((m) => m.rcptTo.includes(to) && m.subject.includes(subject));
    if (found.length > skip) return found[skip];
    if (Date.now() > deadline) throw new Error(`no mail to ${to} about "${subject}" (got ${mails.length} mails)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The link to BASE_URL + path in a mail's plain-text part. */
export function linkIn(mail, path) {
  const prefix = `${BASE_URL}${path}?token=`;
  const at = mail.text.indexOf(prefix);
  if (at < 0) throw new Error(`no ${prefix} link in: ${mail.text}`);
  const token = mail.text.slice(at + prefix.length).match(/^[A-Za-z0-9_-]+/)[0];
  return `${prefix}${token}`;
}
