// Shared helpers for the dashboard browser tests: Debian Chromium through playwright-core.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";

export const BASE_URL = process.env.BASE_URL;
if (!BASE_URL) throw new Error("BASE_URL must point at a running Postback");

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
];

let browser;
export async function launch() {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  return browser;
}

export async function closeBrowser() {
  if (browser) await browser.close();
  browser = undefined;
}

/** A fresh page in its own context; screenshots it into test-results/ when the test fails. */
export async function withPage(t, fn, viewport = { width: 1280, height: 900 }) {
  const b = await launch();
  const context = await b.newContext({ baseURL: BASE_URL, viewport });
  const page = await context.newPage();
  try {
    await fn(page);
  } catch (err) {
    mkdirSync(new URL("./test-results/", import.meta.url), { recursive: true });
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await page.screenshot({ path: new URL(`./test-results/${name}.png`, import.meta.url).pathname, fullPage: true }).catch(() => {});
    throw err;
  } finally {
    await context.close();
  }
}

export function uniqueEmail(tag) {
  return `${tag}-${randomBytes(4).toString("hex")}@example.com`;
}

export const PASSWORD = "correct horse 1";

/** Signs up through the form and lands on Domains. */
export async function signUp(page, email = uniqueEmail("user")) {
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Workspace name").fill("Browser Test Co");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL("**/domains");
  return email;
}

export async function addDomain(page, hostname) {
  await page.goto("/domains");
  await page.getByLabel("Hostname").fill(hostname);
  await page.getByRole("button", { name: "Add domain" }).click();
}

/** Creates a key on the current keys page and returns its full value. */
export async function createKey(page, name) {
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create Inbound Integration Key" }).click();
  return (await page.locator("#new-key-value").textContent()).trim();
}

export async function sendEvent(key, body = { email: "customer@example.com", event: "purchase", value: 99.99, currency: "USD" }) {
  const res = await fetch(`${BASE_URL}/__cc/inbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CC-Api-Key": key },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export function keyRow(page, name) {
  return page.locator("#keys tbody tr", { hasText: name });
}
