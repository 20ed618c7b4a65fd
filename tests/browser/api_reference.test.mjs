// The API reference page: Swagger UI (vendored from npm) renders /v1/openapi.json, and "Try it
// out" calls the live API with the signed-in session.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, addDomain } from "./lib.mjs";

after(closeBrowser);

test("API reference: the document renders and Try it out lists my domains", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    const blocked = [];
    page.on("console", (m) => {
      if (m.type() === "error") blocked.push(m.text());
    });
    await signUp(page);
    await addDomain(page, "reference.example.com");

    await clickAndLoad(page, page.getByRole("link", { name: "API", exact: true }));
    await page.getByRole("heading", { level: 1, name: "API reference" }).waitFor();
    // Swagger UI has read the document: its title and the operations grouped by tag.
    await page.locator(".swagger-ui .info .title", { hasText: "Postback API" }).waitFor();
    const domainsTag = page.locator(".opblock-tag-section").filter({ hasText: /^domains/i });
    await domainsTag.first().waitFor();
    const listDomains = page.locator(".opblock-get").filter({ hasText: "/v1/domains" }).first();
    await listDomains.locator(".opblock-summary").click();
    await listDomains.getByRole("button", { name: "Try it out" }).click();
    await listDomains.getByRole("button", { name: "Execute" }).click();
    const response = listDomains.locator(".responses-wrapper .live-responses-table");
    await response.waitFor();
    const status = await listDomains.locator(".live-responses-table tbody .response-col_status").first().textContent();
    assert.match(status, /200/);
    assert.match(await response.textContent(), /reference\.example\.com/);
    assert.deepEqual(
      blocked.filter((m) => /Content Security Policy|Refused/.test(m)),
      [],
      "nothing the page needs was blocked",
    );
  });
});
