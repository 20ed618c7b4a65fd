// The overview (issue 22) in a real browser: the empty state's three steps, then a workspace
// with known events — the totals, one bar per day of the range, the first/last-touch switch
// changing the campaign table, the range picker used with the keyboard only, the CSV download
// equal to the filtered events list, and the page at phone width with the sidebar as a menu.
// With SCREENSHOTS=1 it also refreshes docs/screenshots/overview-{empty,full}.png.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import {
  TEST_OPTIONS, PHONE, BASE_URL, withPage, closeBrowser, clickAndLoad, signUp, openNewDomainKeys,
  createKey, sendEvent, text,
} from "./lib.mjs";

after(closeBrowser);

const HOST = "overview.example.com";
const SHOTS = new URL("../../docs/screenshots/", import.meta.url);

async function screenshot(page, name) {
  if (!process.env.SCREENSHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: new URL(name, SHOTS).pathname, fullPage: true });
}

/** What the tag reports: a landing of visitor `vid` on `url`, then its email. */
async function track(site, vid, url) {
  const res = await fetch(`${BASE_URL}/__cc/collect`, {
    method: "POST",
    headers: { "Content-Type": "text/plain", Origin: `https://${HOST}`, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0" },
    body: JSON.stringify({ site, vid, url }),
  });
  assert.equal(res.status, 200, "landing reported");
}

async function identify(site, vid, email) {
  const res = await fetch(`${BASE_URL}/__cc/identify`, {
    method: "POST",
    headers: { "Content-Type": "text/plain", Origin: `https://${HOST}` },
    body: JSON.stringify({ site, vid, email }),
  });
  assert.equal(res.status, 200, "email reported");
}

const tableText = async (page, id) => text(page.locator(`#${id}`));

test("overview: empty state, totals, bars per day, first/last touch, keyboard range, CSV", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    // A new workspace lands on the overview and is taught the three steps.
    await page.getByRole("heading", { level: 1, name: "Overview", exact: true }).waitFor();
    const steps = page.locator("#getting-started");
    await steps.waitFor();
    assert.match(await text(steps), /Add a domain/);
    assert.match(await text(page.locator("#snippet-curl")), /__cc\/inbound/);
    await screenshot(page, "overview-empty.png");

    await openNewDomainKeys(page, HOST);
    const key = await createKey(page, "Backend");
    const { json: domain } = await fetch(`${BASE_URL}/v1/domains`, {
      headers: { Cookie: (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ") },
    }).then(async (r) => ({ json: await r.json() }));
    const site = domain.items.find((d) => d.hostname === HOST).siteId;

    // One buyer came from a Google Ads click of the spring campaign, then from the newsletter.
    await track(site, "visitor-overview-1", `https://${HOST}/?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc`);
    await new Promise((r) => setTimeout(r, 20));
    await track(site, "visitor-overview-1", `https://${HOST}/?utm_source=newsletter&utm_medium=email&utm_campaign=weekly`);
    await identify(site, "visitor-overview-1", "buyer@example.com");
    for (const body of [
      { email: "buyer@example.com", event: "purchase", value: 100, currency: "USD", orderId: "A-1" },
      { email: "buyer@example.com", event: "purchase", value: 50.5, currency: "USD", orderId: "A-2" },
      { email: "walk-in@example.com", event: "purchase", value: 1234.5, currency: "EUR", orderId: "A-3" },
      { email: "walk-in@example.com", event: "refund", value: 10, currency: "USD", orderId: "A-4" },
    ]) {
      const { status } = await sendEvent(key, body);
      assert.equal(status, 200);
    }

    await clickAndLoad(page, page.getByRole("link", { name: "Overview", exact: true }));
    assert.equal(await page.locator("#getting-started").count(), 0, "no steps once events arrived");
    assert.match(await text(page.locator("#tile-events")), /Events\s*4\b/);
    assert.match(await text(page.locator("#tile-conversions")), /Conversions\s*3\b/);
    const revenue = await text(page.locator("#tile-revenue"));
    assert.ok(revenue.includes("€1,234.50"), revenue);
    assert.ok(revenue.includes("$150.50"), revenue);
    assert.match(await text(page.locator("#tile-refunds")), /Refunds\s*1\b/);
    // Last 7 days by default: one bar per day.
    assert.equal(await page.locator("#events-chart rect.bar").count(), 7);
    assert.equal(await page.locator("#revenue-chart rect.bar").count(), 7);
    // The same numbers as a table, for screen readers.
    await page.getByText("Show as a table").click();
    assert.equal(await page.locator("#per-day-table tbody tr").count(), 7);

    // Last touch credits the newsletter; first touch the Google Ads click.
    await clickAndLoad(page, page.getByRole("link", { name: "Campaign", exact: true }));
    let campaigns = await tableText(page, "attribution-table");
    assert.ok(campaigns.includes("weekly") && !campaigns.includes("spring"), campaigns);
    await clickAndLoad(page, page.getByRole("link", { name: "First touch", exact: true }));
    campaigns = await tableText(page, "attribution-table");
    assert.ok(campaigns.includes("spring") && !campaigns.includes("weekly"), campaigns);
    assert.match(await text(page.locator("#tile-ad-share")), /67%/, "2 of 3 conversions came from an ad click");
    await screenshot(page, "overview-full.png");

    // The range picker with the keyboard only: Tab from the domain to the range, an arrow to
    // the next choice ("Last 30 days" after the default 7), Tab to Show, Enter.
    await page.locator("#domain").focus();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "range");
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.locator("#range").inputValue(), "30");
    for (const id of ["from", "to"]) {
      await page.keyboard.press("Tab");
      // A date input takes Tab once per part (month, day, year) in Chromium.
      while ((await page.evaluate(() => document.activeElement.id)) === id) await page.keyboard.press("Tab");
    }
    assert.equal(await page.evaluate(() => document.activeElement.id), "apply-range");
    await Promise.all([page.waitForEvent("load"), page.keyboard.press("Enter")]);
    assert.match(page.url(), /range=30/);
    assert.equal(await page.locator("#events-chart rect.bar").count(), 30);
    assert.match(await text(page.locator("#tile-events")), /Events\s*4\b/);

    // The Events tab's CSV is the filtered list.
    await page.goto("/domains");
    await clickAndLoad(page, page.locator("table").getByRole("link", { name: HOST, exact: true }));
    await clickAndLoad(page, page.getByRole("link", { name: "Events", exact: true }));
    await page.getByLabel("Event", { exact: true }).fill("purchase");
    await clickAndLoad(page, page.getByRole("button", { name: "Filter" }));
    const listed = await page.locator("#events tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.eventId));
    assert.equal(listed.length, 3);
    const rowText = await text(page.locator("#events tbody tr").first());
    assert.ok(rowText.includes("€1,234.50"), rowText);
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export-csv").click()]);
    assert.equal(download.suggestedFilename(), "postback-events.csv");
    const stream = await download.createReadStream();
    let csv = "";
    for await (const chunk of stream) csv += chunk;
    const lines = csv.trim().split("\r\n");
    assert.match(lines[0], /^id,receivedAt,timestamp,event,email,value,currency/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(",")[0]), listed);
    assert.ok(lines.some((l) => l.includes(",newsletter,email,weekly,")), "last-touch source in the CSV");
  });
});

const scrollWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth);

test("overview at phone width: no sideways scroll, the sidebar is a menu", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await page.getByRole("heading", { level: 1, name: "Overview", exact: true }).waitFor();
    const width = await scrollWidth(page);
    assert.ok(width <= PHONE.width, `the overview scrolls sideways at ${PHONE.width}px: ${width}px`);
    const configuration = page.getByRole("link", { name: "Configuration", exact: true });
    assert.equal(await configuration.isVisible(), false, "the navigation is folded away");
    await page.getByText("Menu", { exact: true }).click();
    assert.equal(await configuration.isVisible(), true, "the menu opens");
    await clickAndLoad(page, configuration);
    await page.getByRole("heading", { level: 1, name: "Configuration", exact: true }).waitFor();
    // With the keyboard: the menu toggle is reachable and opens with Space.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "nav-toggle");
    await page.keyboard.press("Space");
    assert.equal(await configuration.isVisible(), true);
  }, PHONE);
});
