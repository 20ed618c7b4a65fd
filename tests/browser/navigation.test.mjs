// Seed 001's navigation in a real browser: Configuration → select the domain → its tabs. The
// Webhooks tab lists the webhooks its events go to and creates one for this domain.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, addDomain, domainLink, text } from "./lib.mjs";

after(closeBrowser);

test("navigation: Configuration, a domain's tabs, a webhook for this domain", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await addDomain(page, "tabs.example.com");
    await clickAndLoad(page, page.getByRole("link", { name: "Configuration", exact: true }));
    await page.getByRole("heading", { level: 1, name: "Configuration" }).waitFor();
    await clickAndLoad(page, domainLink(page, "tabs.example.com"));
    await page.getByRole("link", { name: "Inbound Integration Keys", exact: true }).waitFor();

    await clickAndLoad(page, page.getByRole("link", { name: "Webhooks", exact: true }).last());
    assert.match(page.url(), /\/domains\/[^/]+\/webhooks$/);
    await page.locator("#no-domain-webhooks").waitFor();
    await clickAndLoad(page, page.getByRole("link", { name: "New webhook for tabs.example.com" }));
    assert.equal(
      await page.locator("#domain_id option:checked").textContent(),
      "tabs.example.com",
      "the domain is preselected",
    );
    await page.getByLabel("Endpoint URL").fill("https://hooks.example.com/tabs");
    await clickAndLoad(page, page.getByRole("button", { name: "Create webhook" }));

    await page.goto("/domains");
    await clickAndLoad(page, domainLink(page, "tabs.example.com"));
    await clickAndLoad(page, page.getByRole("link", { name: "Webhooks", exact: true }).last());
    const row = page.locator("#webhooks tbody tr");
    assert.equal(await row.count(), 1);
    assert.match(await text(row), /hooks\.example\.com\/tabs.*tabs\.example\.com/);

    await clickAndLoad(page, page.getByRole("link", { name: "Tracking", exact: true }));
    await page.locator("#snippet-tag").waitFor();
    await clickAndLoad(page, page.getByRole("link", { name: "Connections", exact: true }));
    await page.getByRole("heading", { level: 2, name: "Google Ads" }).waitFor();
  });
});
