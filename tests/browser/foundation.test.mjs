// Seed 001 in a real browser: accounts, domains, inbound integration keys, plan limits.
// Each test signs up its own user, so the tests do not depend on each other or on their order.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  TEST_OPTIONS, PHONE, PASSWORD, withPage, closeBrowser, clickAndLoad, uniqueEmail, signUp, logIn,
  addDomain, domainLink, openNewDomainKeys, submitKey, createKey, keyRow, keyCells, text,
  expectFlashError, sendEvent,
} from "./lib.mjs";

after(closeBrowser);

const KEY_LIMIT_MESSAGE = "The Pulse plan allows 2 active inbound integration keys per domain";
// The start of "The Pulse plan allows 1 domain(s) per workspace", whichever way it is worded.
const DOMAIN_LIMIT_MESSAGE = "The Pulse plan allows 1 domain";

async function assertCsrfField(page) {
  const n = await page.locator('form input[type="hidden"][name="csrf_token"]').count();
  assert.ok(n >= 1, `${page.url()}: the form has a hidden csrf_token input`);
}

test("sign up, log out, wrong password, log in", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await page.goto("/signup");
    await assertCsrfField(page);
    const email = await signUp(page);
    await page.getByRole("heading", { level: 1, name: "Overview", exact: true }).waitFor();
    await clickAndLoad(page, page.getByRole("link", { name: "Configuration", exact: true }));
    await page.getByRole("heading", { level: 1, name: "Configuration", exact: true }).waitFor();
    await page.getByText("No domains yet").waitFor();
    assert.ok(await page.getByRole("link", { name: "Configuration", exact: true }).first().isVisible());
    assert.ok(await page.getByRole("link", { name: "Plan", exact: true }).first().isVisible());

    await clickAndLoad(page, page.getByRole("button", { name: "Log out" }));
    await page.goto("/domains");
    await page.waitForURL((url) => url.pathname === "/login");
    await assertCsrfField(page);

    await logIn(page, email, "not my password");
    await page.getByText("Incorrect email or password").waitFor();
    assert.notEqual(new URL(page.url()).pathname, "/domains", "a wrong password does not sign in");

    await logIn(page, uniqueEmail("nobody"), PASSWORD);
    await page.getByText("Incorrect email or password").waitFor();

    await logIn(page, email, PASSWORD);
    await page.waitForURL((url) => url.pathname === "/");
    await page.getByRole("heading", { level: 1, name: "Overview", exact: true }).waitFor();
  });
});

test("domains: add normalised, plan limit, delete with confirmation", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "https://Shop.Example.com/");
    await page.goto("/domains");
    const link = domainLink(page, "shop.example.com");
    await link.waitFor();
    assert.match(await link.getAttribute("href"), /^\/domains\/[^/]+\/keys$/);

    await addDomain(page, "second.example.com");
    await expectFlashError(page, DOMAIN_LIMIT_MESSAGE);
    await page.goto("/domains");
    assert.equal(await page.locator('table a[href$="/keys"]').count(), 1, "still one domain");
    assert.equal(await domainLink(page, "second.example.com").count(), 0);

    const row = page.locator("table tr").filter({ has: page.getByRole("link", { name: "shop.example.com", exact: true }) });
    await clickAndLoad(page, row.getByRole("link", { name: "Delete", exact: true }));
    const confirm = page.getByRole("button", { name: "Delete domain" });
    await confirm.waitFor();
    assert.ok(await page.getByRole("link", { name: "Cancel", exact: true }).isVisible());
    await clickAndLoad(page, confirm);
    await page.goto("/domains");
    await page.getByText("No domains yet").waitFor();
    assert.equal(await domainLink(page, "shop.example.com").count(), 0);
  });
});

test("key lifecycle: shown once, masked after reload, revoke, restore, delete", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "lifecycle.example.com");
    await page.getByText("Inbound Integration Keys", { exact: true }).first().waitFor();
    assert.match(await text(page.locator("#key-usage")), /0 of 2 keys used/);
    // Seed 001's tabs; the Tracking tab has the tag for this domain, ready to copy.
    const tabs = await text(page.getByRole("navigation", { name: "Domain" }));
    assert.equal(tabs, "Inbound Integration Keys Connections Webhooks Tracking Events");
    await clickAndLoad(page, page.getByRole("link", { name: "Tracking", exact: true }));
    const tag = await text(page.locator("#snippet-tag"));
    assert.match(tag, /^<script async src="http:\/\/[^"]+\/__cc\/t\.js" data-site="[^"]+"><\/script>$/);
    assert.ok(await page.locator("#tracking-snippet").getByRole("button", { name: "Copy" }).isVisible());
    await clickAndLoad(page, page.getByRole("link", { name: "Inbound Integration Keys", exact: true }));

    const key = await createKey(page, "Zapier Integration");
    const panel = page.locator("#new-key");
    assert.ok(await panel.getByRole("button", { name: "Copy" }).isVisible(), "a Copy button");
    assert.ok(await panel.getByText("will not be shown again").isVisible(), "the shown-once warning");
    assert.match(await text(page.locator("#key-usage")), /1 of 2 keys used/);

    await page.reload();
    assert.equal(await page.locator("#new-key").count(), 0, "the key is shown once");
    assert.ok(!(await page.content()).includes(key), "the full key is nowhere in the page HTML");
    const cells = keyCells(keyRow(page, "Zapier Integration"));
    assert.equal(await text(cells.masked), `${key.slice(0, 11)}••••`);
    assert.match(await text(cells.masked), /^cc_[0-9a-f]{8}••••$/);
    assert.equal(await text(cells.lastUsed), "Never");
    assert.equal(await text(cells.status), "Active");

    const ok = await sendEvent(key);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.ok, true);
    await page.reload();
    assert.notEqual(await text(cells.lastUsed), "Never", "last used is shown once the key authenticated");

    await clickAndLoad(page, cells.actions.getByRole("link", { name: "Revoke", exact: true }));
    await clickAndLoad(page, page.getByRole("button", { name: "Revoke key" }));
    await page.waitForURL(/\/domains\/[^/]+\/keys$/);
    assert.equal(await text(cells.status), "Revoked");
    assert.equal(await cells.actions.getByRole("link", { name: "Revoke", exact: true }).count(), 0);
    const refused = await sendEvent(key);
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body, { error: "Invalid API key" });

    await clickAndLoad(page, cells.actions.getByRole("button", { name: "Restore", exact: true }));
    assert.equal(await text(cells.status), "Active");
    assert.equal(await cells.actions.getByRole("button", { name: "Restore", exact: true }).count(), 0);
    const restored = await sendEvent(key);
    assert.equal(restored.status, 200, "the same key works again after restore");

    await clickAndLoad(page, cells.actions.getByRole("link", { name: "Delete", exact: true }));
    await clickAndLoad(page, page.getByRole("button", { name: "Delete key" }));
    await page.waitForURL(/\/domains\/[^/]+\/keys$/);
    assert.equal(await keyRow(page, "Zapier Integration").count(), 0, "the deleted key's row is gone");
    assert.equal(await page.locator("#keys tr[data-key-id]").count(), 0);
    const gone = await sendEvent(key);
    assert.equal(gone.status, 401);
    assert.deepEqual(gone.body, { error: "Invalid API key" });
  });
});

test("plan limit on active keys, including restore", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "limits.example.com");
    await createKey(page, "Key One");
    await createKey(page, "Key Two");
    assert.match(await text(page.locator("#key-usage")), /2 of 2 keys used/);

    await submitKey(page, "Key Three");
    await expectFlashError(page, KEY_LIMIT_MESSAGE);
    assert.equal(await page.locator("#new-key").count(), 0, "no key was created");
    assert.equal(await page.locator("#keys tr[data-key-id]").count(), 2);
    assert.match(await text(page.locator("#key-usage")), /2 of 2 keys used/);

    const one = keyCells(keyRow(page, "Key One"));
    await clickAndLoad(page, one.actions.getByRole("link", { name: "Revoke", exact: true }));
    await clickAndLoad(page, page.getByRole("button", { name: "Revoke key" }));
    assert.equal(await text(one.status), "Revoked");
    assert.match(await text(page.locator("#key-usage")), /1 of 2 keys used/);

    await createKey(page, "Key Three");
    assert.equal(await text(keyCells(keyRow(page, "Key Three")).status), "Active");
    assert.match(await text(page.locator("#key-usage")), /2 of 2 keys used/);

    await clickAndLoad(page, one.actions.getByRole("button", { name: "Restore", exact: true }));
    await expectFlashError(page, KEY_LIMIT_MESSAGE);
    assert.equal(await text(one.status), "Revoked", "the refused restore left the key revoked");
    assert.equal(await page.locator("#keys tr[data-key-id]").count(), 3);
  });
});

test("plan page shows the tier, its limits and usage", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "plan.example.com");
    await page.goto("/domains");
    await clickAndLoad(page, page.getByRole("link", { name: "Plan", exact: true }).first());
    await page.waitForURL((url) => url.pathname === "/plan");
    await page.getByRole("heading", { level: 1, name: "Plan", exact: true }).waitFor();
    assert.ok((await page.locator("body").innerText()).includes("Pulse"), "the plan's name is shown");

    const row = (label) =>
      page.locator("table tr").filter({ has: page.getByRole("cell", { name: label, exact: true }) });
    const expected = [
      ["Domains", /\b1 of 1\b/],
      ["Active inbound integration keys per domain", /\bof 2\b/],
      ["Outbound webhooks", /\bof 2\b/],
      ["Inbound events this month", /\bof 10[,.\u00a0\u202f ]?000\b/],
    ];
    for (const [label, usage] of expected) {
      assert.equal(await row(label).count(), 1, `one "${label}" row in the limits table`);
      const rowText = await text(row(label));
      assert.match(rowText, usage, `${label}: ${rowText}`);
    }
  });
});

test("events tab lists events, filters them and opens one", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "events.example.com");
    const key = await createKey(page, "Backend");
    await sendEvent(key, { email: "buyer@example.com", event: "purchase", value: 149.99, currency: "USD", orderId: "ORD-12345" });
    await sendEvent(key, { email: "lead@example.com", event: "lead" });
    await clickAndLoad(page, page.getByRole("link", { name: "Events", exact: true }));
    await page.locator("#events tbody tr").first().waitFor();
    assert.equal(await page.locator("#events tbody tr").count(), 2);
    await page.getByLabel("Event", { exact: true }).fill("purchase");
    await clickAndLoad(page, page.getByRole("button", { name: "Filter" }));
    await page.waitForURL(/event=purchase/);
    assert.equal(await page.locator("#events tbody tr").count(), 1);
    const row = page.locator("#events tbody tr").first();
    assert.ok((await text(row)).includes("$149.99"));
    assert.ok((await text(row)).includes("ORD-12345"));
    await clickAndLoad(page, row.getByRole("link").first());
    await page.getByRole("heading", { name: "purchase", exact: true }).waitFor();
    assert.ok((await text(page.locator("#event-fields"))).includes("buyer@example.com"));
  });
});

const scrollWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth);

test("phone width: no horizontal scroll on the domains page", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await page.goto("/domains");
    let width = await scrollWidth(page);
    assert.ok(width <= PHONE.width, `/domains (empty) scrolls sideways at ${PHONE.width}px: scrollWidth ${width}px`);
    await addDomain(page, "checkout.shop.example.com");
    await page.goto("/domains");
    await domainLink(page, "checkout.shop.example.com").waitFor();
    width = await scrollWidth(page);
    assert.ok(width <= PHONE.width, `/domains (one domain) scrolls sideways at ${PHONE.width}px: scrollWidth ${width}px`);
  }, PHONE);
});

test("phone width: no horizontal scroll on the keys and plan pages, long hostname", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "a-rather-long-subdomain.phone.example.com");
    await createKey(page, "A rather long integration name for a phone");
    const keysPage = new URL(page.url()).pathname;
    const widths = { [`${keysPage} (new key shown)`]: await scrollWidth(page) };
    for (const path of ["/domains", keysPage, "/plan"]) {
      await page.goto(path);
      widths[path] = await scrollWidth(page);
    }
    const wide = Object.entries(widths).filter(([, w]) => w > PHONE.width);
    assert.deepEqual(wide, [], `pages wider than ${PHONE.width}px: ${JSON.stringify(Object.fromEntries(wide))}`);
  }, PHONE);
});
