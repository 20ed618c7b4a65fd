// Settings › API tokens in a real browser: create a token (shown once, with Copy), use it against
// the API, see it listed with its last use, revoke it after confirming, and see the API refuse it;
// the audit log shows the creation and the revocation.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { BASE_URL, TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, text } from "./lib.mjs";

after(closeBrowser);

test("settings: create, use and revoke an API token", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    await signUp(page);
    await clickAndLoad(page, page.getByRole("link", { name: "Settings", exact: true }));
    await page.getByRole("heading", { level: 1, name: "Settings" }).waitFor();
    await page.locator("#no-tokens").waitFor();

    // An empty name is refused next to the field.
    await clickAndLoad(page, page.getByRole("button", { name: "Create token" }));
    assert.match(await text(page.locator("#token-error")), /name is required/);

    await page.getByLabel("Token name").fill("Deploy script");
    await clickAndLoad(page, page.getByRole("button", { name: "Create token" }));
    const value = (await text(page.locator("#new-token-value"))).trim();
    assert.match(value, /^pb_[0-9a-f]{40}$/);
    assert.match(await text(page.locator("#new-token")), /will not be shown again/);
    await page.locator("#new-token").getByRole("button", { name: "Copy" }).waitFor();

    const res = await fetch(`${BASE_URL}/v1/me`, { headers: { Authorization: `Bearer ${value}` } });
    assert.equal(res.status, 200);

    // Shown once: a fresh visit lists it by prefix only, with its last use.
    await page.goto("/settings");
    assert.equal(await page.locator("#new-token").count(), 0);
    assert.ok(!(await page.content()).includes(value));
    const row = page.locator("#tokens tbody tr").filter({ hasText: "Deploy script" });
    assert.match(await text(row), new RegExp(value.slice(0, 9)));
    assert.doesNotMatch(await text(row), /Never/);

    await clickAndLoad(page, row.getByRole("link", { name: "Revoke" }));
    await page.getByRole("heading", { name: 'Revoke "Deploy script"?' }).waitFor();
    await clickAndLoad(page, page.getByRole("button", { name: "Revoke token" }));
    await page.locator(".flash", { hasText: 'Revoked "Deploy script"' }).waitFor();
    await page.locator("#no-tokens").waitFor();
    const after = await fetch(`${BASE_URL}/v1/me`, { headers: { Authorization: `Bearer ${value}` } });
    assert.equal(after.status, 401);

    // The audit log under Settings shows both actions, by whom, without the token's value.
    await page.goto("/settings");
    const audit = page.locator("#audit tbody tr");
    const revoked = audit.filter({ hasText: "token.revoke" });
    assert.match(await text(revoked), /Deploy script/);
    assert.match(await text(audit.filter({ hasText: "token.create" })), /Deploy script/);
    assert.ok(!(await text(page.locator("#audit"))).includes(value));
  });
});
