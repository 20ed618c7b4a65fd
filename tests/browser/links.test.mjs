// Tracking links in a real browser (SPEC "Tracking links and click quality"): create a link on
// the domain's Tracking tab (adding and removing a target row), copy it, open it and land on a
// local page with t.js, sign up there with an email, send a conversion for that email, and see
// linkId/targetId on the event and 1 click / 1 conversion on the link page; deleting asks first.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import {
  BASE_URL, TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, openNewDomainKeys,
  createKey, sendEvent, text,
} from "./lib.mjs";

after(closeBrowser);

// *.localhost resolves to loopback in Chromium, and is a hostname Postback accepts for a domain.
const HOSTNAME = "shop.localhost";

/** The advertiser's site: a landing page with the snippet and a sign-up form. */
async function startLanding(site) {
  const landing = `<!doctype html><html><head><title>Landing</title>
<script async src="${BASE_URL}/__cc/t.js" data-site="${site}"></script></head>
<body><h1>Spring sale</h1>
<form id="signup" action="/thanks" method="get">
  <input type="email" name="email" aria-label="Email"><button type="submit">Sign up</button>
</form>
<script>
  // Submitted in the page, as most landing-page forms are: the page stays, so the test can wait
  // for the snippet's identify report to be answered.
  document.getElementById("signup").addEventListener("submit", function (e) {
    e.preventDefault();
    document.body.insertAdjacentHTML("beforeend", "<p id=thanks>Thanks for signing up</p>");
  });
</script></body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(landing);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return { base: `http://${HOSTNAME}:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/** Resolves once the snippet's report to `path` has been answered 200. */
function reported(page, path) {
  return page.waitForResponse((r) => new URL(r.url()).pathname === path && r.status() === 200);
}

test("tracking links: create, copy, click through to a conversion, delete", TEST_OPTIONS, async (t) => {
  let landing;
  try {
    await withPage(t, async (page) => {
      await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE_URL });
      await signUp(page);
      await openNewDomainKeys(page, HOSTNAME);
      const key = await createKey(page, "Backend");

      await clickAndLoad(page, page.locator("nav.tabs").getByRole("link", { name: "Tracking", exact: true }));
      const tag = await text(page.locator("#snippet-tag"));
      const site = /data-site="([^"]+)"/.exec(tag)?.[1];
      assert.ok(site, `the snippet names the site: ${tag}`);
      landing = await startLanding(site);
      await page.locator("#no-links").waitFor();

      // The form: name, slug, target rows that can be added and removed.
      const slug = `spring-${randomBytes(3).toString("hex")}`;
      const form = page.locator("#new-link");
      await form.getByLabel("Name", { exact: true }).fill("Newsletter");
      await form.getByLabel("Slug", { exact: true }).fill(slug);
      const rows = form.locator(".target-row");
      const before = await rows.count();
      await form.getByRole("button", { name: "Add target" }).click();
      assert.equal(await rows.count(), before + 1);
      await rows.last().getByLabel("Target URL").fill("https://elsewhere.example.com/");
      await rows.last().getByRole("button", { name: "Remove" }).click();
      assert.equal(await rows.count(), before);
      await rows.first().getByLabel("Target URL").fill(`${landing.base}/landing?utm_campaign=spring`);
      await rows.first().getByLabel("Weight").fill("1");
      await clickAndLoad(page, form.getByRole("button", { name: "Create link" }));
      await page.locator(".flash.flash-success", { hasText: "Created link Newsletter" }).waitFor();

      // The full link, ready to copy.
      const linkUrl = `${BASE_URL}/__cc/go/${slug}`;
      const row = page.locator(`#links-table tr[data-slug="${slug}"]`);
      assert.equal(await text(row.locator("code")), linkUrl);
      const copy = row.getByRole("button", { name: "Copy" });
      await copy.click();
      await row.getByRole("button", { name: "Copied" }).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), linkUrl);
      const linkId = await row.getAttribute("data-link-id");

      // A visitor clicks the link, lands on the page with t.js and signs up.
      const email = `visitor-${randomBytes(4).toString("hex")}@example.com`;
      const collected = reported(page, "/__cc/collect");
      await page.goto(`${linkUrl}?utm_source=newsletter`);
      await page.waitForURL((u) => u.hostname === HOSTNAME && u.pathname === "/landing");
      await collected;
      const landed = new URL(page.url());
      assert.equal(landed.searchParams.get("utm_source"), "newsletter", "the query went through");
      assert.equal(landed.searchParams.get("utm_campaign"), "spring");
      assert.equal(landed.searchParams.get("pb_click"), null, "t.js took pb_click off the address bar");
      const identified = reported(page, "/__cc/identify");
      await page.getByLabel("Email").fill(email);
      await page.getByRole("button", { name: "Sign up" }).click();
      await identified;
      await page.locator("#thanks").waitFor();

      // The conversion arrives from the advertiser's backend.
      const sent = await sendEvent(key, { email, event: "purchase", value: 25, currency: "USD" });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));

      // The link page: its target id, 1 click, 1 conversion by first and by last touch.
      await page.goto(`/links/${linkId}`);
      const targetId = await page.locator("#edit-link input[name='target_id']").first().inputValue();
      assert.match(targetId, /^[0-9a-f-]{36}$/);
      assert.equal(await text(page.locator("#total-clicks")), "1");
      assert.equal(await text(page.locator("#clicks-30-days")), "1");
      assert.equal(await text(page.locator("#first-conversions")), "1");
      assert.equal(await text(page.locator("#last-conversions")), "1");
      assert.equal(await text(page.locator("#last-revenue")), "$25.00");
      assert.equal(await page.locator("#link-stats svg rect").count(), 30, "a bar per day");

      // The event page shows the link on the touch.
      await page.goto(`/events/${sent.body.eventId}`);
      const last = page.locator('[data-touch="last"]');
      await last.waitFor();
      const card = await text(last);
      assert.ok(card.includes(linkId), `linkId on the last touch: ${card}`);
      assert.ok(card.includes(targetId), `targetId on the last touch: ${card}`);
      assert.ok(card.includes("Newsletter"), card);
      assert.ok(card.includes("newsletter"), "utm_source of the click");

      // Deleting asks first; Cancel keeps the link.
      await page.goto(`/links/${linkId}`);
      await clickAndLoad(page, page.getByRole("link", { name: "Delete link" }));
      await page.getByRole("heading", { name: "Delete link Newsletter?" }).waitFor();
      await clickAndLoad(page, page.getByRole("link", { name: "Cancel" }));
      await page.waitForURL((u) => u.pathname === `/links/${linkId}`);
      await clickAndLoad(page, page.getByRole("link", { name: "Delete link" }));
      await clickAndLoad(page, page.getByRole("button", { name: "Delete link" }));
      await page.locator(".flash.flash-success", { hasText: "Deleted link Newsletter" }).waitFor();
      await page.locator("#no-links").waitFor();
      const gone = await fetch(linkUrl, { redirect: "manual" });
      assert.equal(gone.status, 404);
      assert.match(await gone.text(), /Link not found/);
    });
  } finally {
    if (landing) await landing.close();
  }
});
