// Seed 001 in a real browser: accounts, domains, inbound integration keys, plan limits.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  withPage, signUp, addDomain, createKey, sendEvent, keyRow, closeBrowser, uniqueEmail, PASSWORD,
} from "./lib.mjs";

after(closeBrowser);

test("sign up, log out, wrong password, log in", async (t) => {
  await withPage(t, async (page) => {
    const email = await signUp(page);
    await page.getByRole("heading", { name: "Domains", exact: true }).waitFor();
    assert.ok(await page.getByText("No domains yet").isVisible());
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL("**/login");
    await page.goto("/domains");
    await page.waitForURL("**/login");

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("not my password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Incorrect email or password").waitFor();

    await page.getByLabel("Email").fill(uniqueEmail("nobody"));
    await page.getByLabel("Password").fill("not my password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Incorrect email or password").waitFor();

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL("**/domains");
  });
});

test("domains: add normalised, plan limit, delete with confirmation", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "https://Shop.Example.com/");
    await page.waitForURL(/\/domains\/[0-9a-f-]+\/keys$/);
    await page.getByRole("heading", { name: "shop.example.com" }).waitFor();

    await addDomain(page, "second.example.com");
    await page.locator(".flash-error", { hasText: "The Pulse plan allows 1 domain per workspace" }).waitFor();
    assert.equal(await page.locator("#domains tbody tr").count(), 1);
    assert.ok(await page.getByRole("link", { name: "shop.example.com" }).isVisible());

    await page.locator("#domains tbody tr", { hasText: "shop.example.com" }).getByRole("link", { name: "Delete" }).click();
    await page.getByRole("heading", { name: "Delete shop.example.com?" }).waitFor();
    await page.getByRole("button", { name: "Delete domain" }).click();
    await page.waitForURL("**/domains");
    await page.getByText("No domains yet").waitFor();
  });
});

test("key lifecycle: shown once, masked after reload, revoke, restore, delete", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "lifecycle.example.com");
    const key = await createKey(page, "Zapier Integration");
    assert.match(key, /^cc_[0-9a-f]{40}$/);
    assert.ok(await page.getByText("will not be shown again").isVisible());
    assert.ok(await page.getByRole("button", { name: "Copy" }).isVisible());

    await page.reload();
    assert.equal(await page.locator("#new-key").count(), 0, "the key is shown once");
    assert.ok(!(await page.content()).includes(key), "the full key is nowhere on the page");
    const row = keyRow(page, "Zapier Integration");
    assert.ok((await row.textContent()).includes(`${key.slice(0, 11)}••••`));
    assert.ok((await row.textContent()).includes("Never"));
    assert.ok((await row.textContent()).includes("Active"));

    assert.equal((await sendEvent(key)).status, 200);
    await page.reload();
    assert.ok(!(await keyRow(page, "Zapier Integration").textContent()).includes("Never"), "last used is shown");

    await keyRow(page, "Zapier Integration").getByRole("link", { name: "Revoke" }).click();
    await page.getByText("stop working immediately").waitFor();
    await page.getByRole("button", { name: "Revoke key" }).click();
    await keyRow(page, "Zapier Integration").getByText("Revoked").waitFor();
    const refused = await sendEvent(key);
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body, { error: "Invalid API key" });

    await keyRow(page, "Zapier Integration").getByRole("button", { name: "Restore" }).click();
    await keyRow(page, "Zapier Integration").getByText("Active").waitFor();
    assert.equal((await sendEvent(key)).status, 200);

    await keyRow(page, "Zapier Integration").getByRole("link", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete key" }).click();
    await page.getByText("No keys yet").waitFor();
    assert.equal((await sendEvent(key)).status, 401);
  });
});

test("plan limit on active keys, including restore", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "limits.example.com");
    await createKey(page, "one");
    await createKey(page, "two");
    assert.equal((await page.locator("#key-usage").textContent()).trim(), "2 of 2 keys used");
    await page.getByLabel("Name").fill("three");
    await page.getByRole("button", { name: "Create Inbound Integration Key" }).click();
    await page.locator(".flash-error", { hasText: "The Pulse plan allows 2 active inbound integration keys per domain" }).waitFor();
    assert.equal(await page.locator("#keys tbody tr").count(), 2);

    await keyRow(page, "one").getByRole("link", { name: "Revoke" }).click();
    await page.getByRole("button", { name: "Revoke key" }).click();
    await createKey(page, "three");
    await keyRow(page, "one").getByRole("button", { name: "Restore" }).click();
    await page.locator(".flash-error", { hasText: "The Pulse plan allows 2 active inbound integration keys per domain" }).waitFor();
    assert.ok((await keyRow(page, "one").textContent()).includes("Revoked"));
  });
});

test("plan page shows the tier, its limits and usage", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "plan.example.com");
    await page.getByRole("link", { name: "Plan" }).click();
    await page.getByRole("heading", { name: "Plan", exact: true }).waitFor();
    const table = page.locator("#limits");
    assert.ok((await page.content()).includes("Pulse"));
    for (const [label, usage] of [
      ["Domains", "1 of 1"],
      ["Active inbound integration keys per domain", "0 of 2"],
      ["Outbound webhooks", "0 of 2"],
      ["Inbound events this month", "0 of 10000"],
    ]) {
      const row = table.locator("tr", { hasText: label }).first();
      assert.ok((await row.textContent()).includes(usage), `${label}: ${await row.textContent()}`);
    }
  });
});

test("events tab lists events, filters them and opens one", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "events.example.com");
    const key = await createKey(page, "Backend");
    await sendEvent(key, { email: "buyer@example.com", event: "purchase", value: 149.99, currency: "USD", orderId: "ORD-12345" });
    await sendEvent(key, { email: "lead@example.com", event: "lead" });
    await page.getByRole("link", { name: "Events" }).click();
    await page.locator("#events tbody tr").first().waitFor();
    assert.equal(await page.locator("#events tbody tr").count(), 2);
    await page.getByLabel("Event").fill("purchase");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/event=purchase/);
    assert.equal(await page.locator("#events tbody tr").count(), 1);
    const row = page.locator("#events tbody tr").first();
    assert.ok((await row.textContent()).includes("149.99 USD"));
    assert.ok((await row.textContent()).includes("ORD-12345"));
    await row.getByRole("link").first().click();
    await page.getByRole("heading", { name: "purchase", exact: true }).waitFor();
    assert.ok((await page.locator("#event-fields").textContent()).includes("buyer@example.com"));
  });
});

test("phone width: no horizontal scroll on the domains and keys pages", async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "phone.example.com");
    await createKey(page, "A rather long integration name");
    for (const path of [page.url(), "/domains", "/plan"]) {
      await page.goto(path);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${path} scrolls sideways: ${width}px`);
    }
  }, { width: 390, height: 844 });
});
