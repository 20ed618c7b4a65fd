// Ad platform connections and attribution in a real browser (seed 000): set the attribution
// window and the default country for phone numbers, connect Meta on a domain's Connections tab (a missing token is refused next to the form, the saved token is never
// shown again), send a test event, see an attributed purchase's first and last touch and its Meta
// delivery on the event page, and disconnect after confirming. The server's platform APIs point
// at a local fake, started by tests/e2e/browser.rs, that answers 200.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  BASE_URL, TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, openNewDomainKeys,
  createKey, sendEvent, text,
} from "./lib.mjs";

after(closeBrowser);

async function report(path, body) {
  const res = await fetch(`${BASE_URL}${path}`, {
    method: "POST",
    headers: { "Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${path}: ${await res.text()}`);
}

test("connections: connect Meta, test it, see attribution and the delivery, disconnect", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "ads.example.com");
    const key = await createKey(page, "Backend");
    const site = (await text(page.locator("code").first())).trim();

    await clickAndLoad(page, page.getByRole("link", { name: "Connections", exact: true }));
    await page.getByRole("heading", { level: 2, name: "Meta" }).waitFor();
    const meta = page.locator("#connection-meta");
    assert.match(await text(meta), /Not connected/);

    // The attribution window is editable (default 90 days).
    const days = page.getByLabel("Attribution window (days)");
    assert.equal(await days.inputValue(), "90");
    await days.fill("30");
    await clickAndLoad(page, page.getByRole("button", { name: "Save window" }));
    await page.locator(".flash", { hasText: "Attribution window set to 30 days" }).waitFor();
    assert.equal(await page.getByLabel("Attribution window (days)").inputValue(), "30");

    // The default country for national phone numbers: any case, stored upper case, with its
    // calling code; a code that is not a country is refused and the saved one kept.
    const country = page.getByLabel("Default country for phone numbers");
    assert.equal(await country.inputValue(), "");
    await country.fill("gb");
    await clickAndLoad(page, page.getByRole("button", { name: "Save country" }));
    await page.locator(".flash", { hasText: "Default country set to GB" }).waitFor();
    await page.locator(".flash", { hasText: "without a country code get its calling code, 44." }).waitFor();
    assert.equal(await page.getByLabel("Default country for phone numbers").inputValue(), "GB");
    await page.getByLabel("Default country for phone numbers").fill("ZZ");
    await clickAndLoad(page, page.getByRole("button", { name: "Save country" }));
    await page.locator(".flash", { hasText: "is not an ISO 3166-1 alpha-2 country code" }).waitFor();
    assert.equal(await page.getByLabel("Default country for phone numbers").inputValue(), "GB");

    // No token: refused, with the reason in the Meta card and the pixel id kept.
    await meta.getByLabel("Pixel (dataset) ID").fill("1234567890");
    await clickAndLoad(page, meta.getByRole("button", { name: "Connect Meta" }));
    const alert = page.locator("#connection-meta [role=alert]");
    assert.match(await text(alert), /accessToken|access token/i);
    assert.equal(await page.locator("#connection-meta").getByLabel("Pixel (dataset) ID").inputValue(), "1234567890");

    await page.locator("#connection-meta").getByLabel("Conversions API access token").fill("EAAB-browser-secret");
    await clickAndLoad(page, page.locator("#connection-meta").getByRole("button", { name: "Connect Meta" }));
    await page.locator(".flash", { hasText: "Meta saved" }).waitFor();
    const saved = page.locator("#connection-meta");
    assert.match(await text(saved), /Connected/);
    const token = saved.getByLabel("Conversions API access token");
    assert.equal(await token.inputValue(), "", "the saved token is not put back in the page");
    assert.match(await token.getAttribute("placeholder"), /Saved/);
    assert.ok(!(await page.content()).includes("EAAB-browser-secret"), "the token never appears in the page");

    // No test event code: the test would record a real purchase, so it waits for a confirmation.
    await clickAndLoad(page, saved.getByRole("button", { name: "Send test event" }));
    await page.locator(".flash", { hasText: "would record this sample as a real 99.99 USD purchase" }).waitFor();
    await page.locator("#connection-meta").getByLabel(/record the test as a real 99.99 USD purchase/).check();
    await clickAndLoad(page, page.locator("#connection-meta").getByRole("button", { name: "Send test event" }));
    await page.locator(".flash", { hasText: "Test event sent: Meta answered 200" }).waitFor();

    // A visit with UTMs, an identify, then a purchase: attributed, and sent to Meta.
    await report("/__cc/collect", { site, vid: "browser-visitor-1", url: "https://ads.example.com/?utm_source=instagram&utm_campaign=winter&fbclid=IwAR-page" });
    await new Promise((r) => setTimeout(r, 30));
    await report("/__cc/collect", { site, vid: "browser-visitor-1", url: "https://ads.example.com/checkout?utm_source=email" });
    await report("/__cc/identify", { site, vid: "browser-visitor-1", email: "shopper@example.com" });
    const sent = await sendEvent(key, { email: "shopper@example.com", event: "purchase", value: 20 });
    assert.equal(sent.status, 200);
    assert.deepEqual(sent.body.dispatched, ["meta"]);

    await page.goto(`/events/${sent.body.eventId}`);
    const first = page.locator('[data-touch="first"]');
    const last = page.locator('[data-touch="last"]');
    assert.match(await text(first), /First touch.*instagram.*winter/);
    assert.match(await text(first), /IwAR-page/);
    assert.match(await text(last), /Last touch.*email/);
    assert.match(await text(first), /Quality\s*100/);
    await clickAndLoad(page, page.getByRole("link", { name: "how click quality is scored" }));
    assert.match(await text(page.locator("#quality-rules")), /navigator\.webdriver/);
    await page.goBack();
    const row = page.locator('#event-deliveries tr[data-target="Meta"]');
    const deadline = Date.now() + 15_000;
    while (!/succeeded/.test(await text(row))) {
      if (Date.now() > deadline) throw new Error(`Meta delivery not succeeded: ${await text(row)}`);
      await new Promise((r) => setTimeout(r, 200));
      await page.reload();
    }
    await row.getByText("Attempts").click();
    assert.match(await text(row), /events_received/);

    // Disconnect asks first.
    await page.goto(page.url().replace(/\/events\/.*/, "/domains"));
    await clickAndLoad(page, page.locator("table").getByRole("link", { name: "ads.example.com", exact: true }));
    await clickAndLoad(page, page.getByRole("link", { name: "Connections", exact: true }));
    await clickAndLoad(page, page.locator("#connection-meta").getByRole("link", { name: "Disconnect" }));
    await page.getByRole("heading", { name: "Disconnect Meta?" }).waitFor();
    await clickAndLoad(page, page.getByRole("button", { name: "Disconnect Meta" }));
    await page.locator(".flash", { hasText: "Meta disconnected" }).waitFor();
    assert.match(await text(page.locator("#connection-meta")), /Not connected/);
  });
});
