// Times in the workspace's time zone, with the zone shown, across the dashboard (issue 22):
// set under Settings → Time zone, then the Events tab, an event's page and the keys tab (with
// each key's last event) show Tokyo time marked JST; money reads with its symbol.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, openNewDomainKeys, createKey,
  submitKey, sendEvent, keyRow, keyCells, text,
} from "./lib.mjs";

after(closeBrowser);

test("time zone: events, event page and keys show Tokyo time with the zone", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openNewDomainKeys(page, "tokyo.example.com");
    const key = await createKey(page, "Backend");
    const keysUrl = page.url();
    await submitKey(page, "Idle");

    // Asia/Tokyo has no daylight saving time: +9 (JST) whenever this runs.
    await page.goto("/settings/time-zone");
    await page.getByLabel("Time zone", { exact: true }).fill("Asia/Tokyo");
    await clickAndLoad(page, page.getByRole("button", { name: "Save" }));
    assert.equal(await text(page.locator("#current-time-zone")), "Asia/Tokyo");

    const { status, body } = await sendEvent(key, {
      email: "tokyo@example.com", event: "purchase", value: 2500.5, currency: "USD",
      timestamp: "2026-01-15T23:30:00Z",
    });
    assert.equal(status, 200, JSON.stringify(body));

    // The keys tab: the key that sent it shows its last event, the other one never.
    await page.goto(keysUrl);
    const backend = keyCells(keyRow(page, "Backend"));
    assert.equal(await text(backend.lastEvent), "just now");
    assert.match(await backend.lastEvent.getAttribute("title"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST$/);
    assert.equal(await text(keyCells(keyRow(page, "Idle")).lastEvent), "Never");
    assert.match(await backend.created.getAttribute("title"), / JST$/);

    // The Events tab: the value with its symbol, the received time's title in Tokyo time.
    await clickAndLoad(page, page.getByRole("link", { name: "Events", exact: true }));
    const row = page.locator("#events tbody tr").first();
    assert.ok((await text(row)).includes("$2,500.50"), await text(row));
    assert.match(await row.locator("td").first().getAttribute("title"), / JST$/);

    // The event's page: occurred at 23:30 UTC is 08:30 the next morning in Tokyo.
    await clickAndLoad(page, row.locator("a").first());
    const detail = await text(page.locator("main"));
    assert.ok(detail.includes("2026-01-16 08:30:00 JST"), detail);
    assert.ok(!detail.includes(" UTC"), "no time left in UTC");
    assert.ok(detail.includes("$2,500.50"), detail);
  });
});
