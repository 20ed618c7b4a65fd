// "Connect Google Ads", "Connect Meta" and "Connect TikTok" through the whole OAuth flow in a
// real browser: the Connections tab's button, the provider's authorization page (local fakes,
// served from `localhost` while the dashboard is on 127.0.0.1; clicking "Allow" there returns to
// the callback by a cross-site navigation, as with the real providers), the pick from the lists
// fetched with the new token, the saved connection. Not part of the main suite (the name does not match
// node --test's patterns): run by tests/e2e/platforms/oauth_browser.rs, which starts the fakes
// and a server pointed at them, with BASE_URL set.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, addDomain, domainLink, text,
} from "../lib.mjs";

after(closeBrowser);

async function openConnections(page, hostname) {
  await addDomain(page, hostname);
  await page.goto("/domains");
  await clickAndLoad(page, domainLink(page, hostname));
  await clickAndLoad(page, page.getByRole("link", { name: "Connections", exact: true }));
  await page.getByRole("heading", { level: 2, name: "Google Ads" }).waitFor();
}

/**
 * Clicks the card's "Connect …" link, follows the provider's page back to the callback, picks
 * `choice` and saves; ends on the Connections tab with the success message.
 */
async function connect(page, platform, label, choice) {
  const card = page.locator(`#connection-${platform}`);
  assert.match(await text(card), /Not connected/);
  await clickAndLoad(page, card.getByRole("link", { name: `Connect ${label}`, exact: true }));
  // The provider's page, on another site: the user allows access and is sent back.
  await page.waitForURL((url) => url.hostname === "localhost");
  await page.getByRole("heading", { name: "Allow Postback to manage your ads?" }).waitFor();
  await clickAndLoad(page, page.getByRole("link", { name: "Allow", exact: true }));
  await page.waitForURL((url) => url.pathname === `/oauth/${platform}/callback`);
  await page.getByRole("heading", { level: 1, name: `Connect ${label}` }).waitFor();
  // Nothing secret on the pick page: only the flow's id.
  assert.ok(!/ya29\.|EAA-|tt-access-|1\/\/from-code/.test(await page.content()), "no token in the page");
  await page.getByLabel(choice, { exact: true }).check();
  await clickAndLoad(page, page.getByRole("button", { name: "Connect", exact: true }));
  await page.waitForURL(/\/domains\/[^/]+\/connections$/);
  await page.locator(".flash", { hasText: `${label} connected: new events are sent to it.` }).waitFor();
  const saved = page.locator(`#connection-${platform}`);
  assert.match(await text(saved), /Connected/);
  return saved;
}

test("connect Google Ads by OAuth in a browser and pick the conversion action", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openConnections(page, "oauth-google.example.com");
    const saved = await connect(page, "googleads", "Google Ads", "123-456-7890 › Lead (555222)");
    assert.equal(await saved.getByLabel("Customer ID", { exact: true }).inputValue(), "1234567890");
    assert.equal(await saved.getByLabel("Conversion action ID", { exact: true }).inputValue(), "555222");
    assert.match(await saved.getByLabel("OAuth refresh token").getAttribute("placeholder"), /Saved/);
    assert.equal(await saved.getByLabel("OAuth refresh token").inputValue(), "");
  });
});

test("connect Meta by OAuth in a browser and pick the pixel", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openConnections(page, "oauth-meta.example.com");
    const saved = await connect(page, "meta", "Meta", "Shop EU (1010) › Staging (5550002)");
    assert.equal(await saved.getByLabel("Pixel (dataset) ID", { exact: true }).inputValue(), "5550002");
    const token = saved.getByLabel("Conversions API access token");
    assert.equal(await token.inputValue(), "");
    assert.match(await token.getAttribute("placeholder"), /Saved/);
  });
});

test("connect TikTok by OAuth in a browser and pick the pixel", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await openConnections(page, "oauth-tiktok.example.com");
    const saved = await connect(page, "tiktok", "TikTok", "Shop Ads (6900000000000000001) › Outlet (CSHOPPIXEL02)");
    assert.equal(await saved.getByLabel("Pixel code", { exact: true }).inputValue(), "CSHOPPIXEL02");
    assert.match(await saved.getByLabel("Events API access token").getAttribute("placeholder"), /Saved/);
  });
});
