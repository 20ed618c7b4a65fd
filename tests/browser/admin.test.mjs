// Platform admin in a real browser: an admin (created by tests/e2e/browser.rs and passed in
// ADMIN_EMAIL / ADMIN_PASSWORD) finds a customer's workspace, changes its plan, suspends it (the
// customer sees the banner), edits a plan limit, reads the audit log and restores the workspace;
// a customer gets the 404 page at /admin.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, logIn, text } from "./lib.mjs";

after(closeBrowser);

const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;

test("admin: change plan, suspend and restore a workspace, edit plan limits", TEST_OPTIONS, async (t) => {
  assert.ok(ADMIN_EMAIL && ADMIN_PASSWORD, "tests/e2e/browser.rs passes the admin's credentials");
  let customer;
  await withPage(t, async (page) => {
    customer = await signUp(page);
    assert.equal(await page.getByRole("link", { name: "Admin", exact: true }).count(), 0);
    const res = await page.goto("/admin");
    assert.equal(res.status(), 404);
  });

  await withPage(t, async (page) => {
    await page.goto("/login");
    await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await clickAndLoad(page, page.getByRole("link", { name: "Admin", exact: true }));
    await page.getByRole("heading", { level: 1, name: "Workspaces" }).waitFor();
    // The browser suite's SMTP server takes every mail: none is failing.
    await page.getByRole("heading", { name: "Mail not sent" }).waitFor();
    await page.locator("#no-failing-mail").waitFor();
    await page.getByLabel("Search").fill(customer.toUpperCase());
    await clickAndLoad(page, page.getByRole("button", { name: "Search" }));
    const rows = page.locator("#workspaces tbody tr");
    assert.equal(await rows.count(), 1);
    assert.match(await text(rows.first()), new RegExp(customer.replace(/[.]/g, "\\.")));
    assert.match(await text(rows.first()), /Pulse.*Active/);
    await clickAndLoad(page, rows.first().getByRole("link"));

    await page.getByLabel("Plan", { exact: true }).selectOption({ label: "Signal" });
    await clickAndLoad(page, page.getByRole("button", { name: "Change plan" }));
    await page.locator(".flash", { hasText: "on the Signal plan" }).waitFor();

    await page.getByLabel("Reason (shown to its members)").fill("Unpaid invoice");
    await clickAndLoad(page, page.getByRole("button", { name: "Suspend workspace" }));
    await page.locator(".flash", { hasText: "is suspended" }).waitFor();
    assert.equal(await text(page.locator("#suspended-reason")), "Unpaid invoice");
    const audit = await text(page.locator("#audit"));
    assert.match(audit, /workspace\.suspend/);
    assert.match(audit, /workspace\.plan/);
    assert.match(audit, new RegExp(ADMIN_EMAIL.replace(/[.]/g, "\\.")));

    // The customer sees the banner.
    const b = page.context().browser();
    const other = await b.newContext({ baseURL: new URL(page.url()).origin });
    const cpage = await other.newPage();
    await cpage.goto("/login");
    await logIn(cpage, customer);
    await cpage.locator(".banner", { hasText: "This workspace is suspended: Unpaid invoice" }).waitFor();
    await other.close();

    await clickAndLoad(page, page.getByRole("button", { name: "Unsuspend workspace" }));
    await page.locator(".flash", { hasText: "is active on the Signal plan" }).waitFor();

    // Plan limits: empty means unlimited. (Clarity, which no other browser test uses; its
    // limits are put back at the end.)
    await page.goto("/admin/plans");
    const clarity = () => page.locator("#plan-clarity");
    const save = () => clickAndLoad(page, clarity().getByRole("button", { name: "Save Clarity" }));
    assert.equal(await clarity().getByLabel("Webhooks per workspace").inputValue(), "20");
    await clarity().getByLabel("Webhooks per workspace").fill("25");
    await clarity().getByLabel("Domains per workspace").fill("");
    await save();
    await page.locator(".flash", { hasText: "Clarity limits saved" }).waitFor();
    assert.equal(await clarity().getByLabel("Webhooks per workspace").inputValue(), "25");
    assert.equal(await clarity().getByLabel("Domains per workspace").inputValue(), "");
    await clarity().getByLabel("Retention (days)").fill("soon");
    await save();
    await page.locator(".flash", { hasText: "Retention must be a whole number" }).waitFor();
    await clarity().getByLabel("Webhooks per workspace").fill("20");
    await clarity().getByLabel("Domains per workspace").fill("10");
    await save();
    await page.locator(".flash", { hasText: "Clarity limits saved" }).waitFor();
  });
});
