// Mail in a real browser (issue 20): each test reads what the real SMTP server of
// tests/e2e/browser.rs received. Forgot password → the mailed link → a new password → signed in;
// accepting invitations from the mail (signed in, and signing up first); the verification
// banner's "resend" and the mailed link; Settings › Account (password, sessions, notifications,
// email, deleting the workspace and the account).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  TEST_OPTIONS, PASSWORD, withPage, closeBrowser, clickAndLoad, signUp, uniqueEmail, logIn, text,
  waitForMail, linkIn, expectFlashError,
} from "./lib.mjs";

after(closeBrowser);

test("forgot password: the mailed link sets a new password and signs in", TEST_OPTIONS, async (t) => {
  let email;
  await withPage(t, async (page) => {
    email = await signUp(page);
  });
  const newPassword = "a fresh password 42";
  await withPage(t, async (page) => {
    await page.goto("/login");
    await clickAndLoad(page, page.getByRole("link", { name: "Forgot password?" }));
    await page.getByRole("heading", { name: "Forgot password?" }).waitFor();
    await page.getByLabel("Email", { exact: true }).fill(email);
    await clickAndLoad(page, page.getByRole("button", { name: "Send the link" }));
    assert.match(await text(page.locator("#reset-sent")), /If an account uses this address/);

    const mail = await waitForMail(email, "Reset your Postback password");
    const link = linkIn(mail, "/reset-password");
    assert.ok(mail.html.includes(`href="${link}"`), "the HTML part has the same link");
    await page.goto(link);
    await page.getByLabel("New password").fill(newPassword);
    await clickAndLoad(page, page.getByRole("button", { name: "Set the password and log in" }));
    await page.waitForURL((url) => url.pathname === "/domains");
    await page.locator(".flash", { hasText: "Your new password is set" }).waitFor();

    // The link works once.
    await page.goto(link);
    await page.getByLabel("New password").fill("another password 43");
    await clickAndLoad(page, page.getByRole("button", { name: "Set the password and log in" }));
    await expectFlashError(page, "Token is invalid or has expired");
  });
  await withPage(t, async (page) => {
    await page.goto("/login");
    await logIn(page, email, PASSWORD);
    await expectFlashError(page, "Incorrect email or password");
    await logIn(page, email, newPassword);
    await page.waitForURL((url) => url.pathname === "/");
  });
});

test("invitations: joining from the mailed link, signed in or after signing up", TEST_OPTIONS, async (t) => {
  let member;
  await withPage(t, async (page) => {
    member = await signUp(page);
  });
  const newcomer = uniqueEmail("newcomer");
  let workspace;
  await withPage(t, async (page) => {
    const owner = await signUp(page);
    workspace = `Workspace ${owner.split("@")[0]}`;
    for (const email of [member, newcomer]) {
      await page.goto("/settings");
      await page.getByLabel("Add by email").fill(email);
      await clickAndLoad(page, page.getByRole("button", { name: "Add member" }));
      await page.locator(".flash", { hasText: `Invited ${email}` }).waitFor();
    }
    // Resend: a second mail with a new link; the first stops working.
    await waitForMail(newcomer, "invited you");
    const row = page.locator(`#members tr[data-invitation="${newcomer}"]`);
    await clickAndLoad(page, row.getByRole("button", { name: "Resend" }));
    await page.locator(".flash", { hasText: `Invitation sent again to ${newcomer}` }).waitFor();
  });
  // An existing account: signed in, it joins with one click.
  await withPage(t, async (page) => {
    await page.goto("/login");
    await logIn(page, member);
    const link = linkIn(await waitForMail(member, "invited you"), "/invitations/accept");
    await page.goto(link);
    assert.match(await text(page.locator("#offer")), new RegExp(`join ${workspace} as member`));
    await clickAndLoad(page, page.getByRole("button", { name: `Join ${workspace}` }));
    await page.waitForURL((url) => url.pathname === "/domains");
    await page.locator(".flash", { hasText: `You joined ${workspace} as member` }).waitFor();
    assert.match(await text(page.locator(".who")), new RegExp(workspace));
  });
  // Someone new: the link of the newest mail asks to sign up first, then comes back to join.
  await withPage(t, async (page) => {
    const first = linkIn(await waitForMail(newcomer, "invited you"), "/invitations/accept");
    const link = linkIn(await waitForMail(newcomer, "invited you", 1), "/invitations/accept");
    assert.notEqual(first, link);
    await page.goto(first);
    await page.locator(".flash-error", { hasText: "Token is not a valid invitation" }).waitFor();
    await page.goto(link);
    await clickAndLoad(page, page.getByRole("link", { name: "Sign up" }));
    await page.getByLabel("Email", { exact: true }).fill(newcomer);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Workspace name", { exact: true }).fill("Newcomer Co");
    await clickAndLoad(page, page.getByRole("button", { name: "Create account" }));
    await page.waitForURL((url) => url.pathname === "/invitations/accept");
    await clickAndLoad(page, page.getByRole("button", { name: `Join ${workspace}` }));
    await page.locator(".flash", { hasText: `You joined ${workspace} as member` }).waitFor();
    // Used: the link no longer works.
    await page.goto(link);
    await page.locator(".flash-error", { hasText: "Token is not a valid invitation" }).waitFor();
  });
});

test("verification: the banner resends the link, and the link confirms the address", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    const email = await signUp(page);
    const banner = page.locator("#verify-banner");
    assert.match(await text(banner), /Please confirm your address/);
    await clickAndLoad(page, banner.getByRole("button", { name: "Resend the link" }));
    await page.locator(".flash", { hasText: `A new confirmation link is on its way to ${email}` }).waitFor();
    const second = await waitForMail(email, "Confirm your email", 1);
    await page.goto(linkIn(second, "/verify-email"));
    await page.getByRole("heading", { name: "Address confirmed" }).waitFor();
    await page.goto("/domains");
    assert.equal(await page.locator("#verify-banner").count(), 0);
  });
});

test("settings › account: password, sessions, notifications, email, delete workspace and account", TEST_OPTIONS, async (t) => {
  await withPage(t, async (page) => {
    const email = await signUp(page);
    const workspace = `Workspace ${email.split("@")[0]}`;
    const other = await page.context().browser().newContext({ baseURL: new URL(page.url()).origin });
    const opage = await other.newPage();
    await opage.goto("/login");
    await logIn(opage, email);
    await opage.waitForURL((url) => url.pathname === "/");

    await page.goto("/settings");
    await clickAndLoad(page, page.locator("#account-link"));
    await page.getByRole("heading", { level: 1, name: "Account" }).waitFor();

    // Change password: the current one is required; other sessions end.
    await page.getByLabel("Current password", { exact: true }).first().fill("not my password");
    await page.getByLabel("New password").fill("changed password 77");
    await clickAndLoad(page, page.getByRole("button", { name: "Change password" }));
    await expectFlashError(page, "is not your current password");
    await page.locator("#password").getByLabel("Current password").fill(PASSWORD);
    await page.getByLabel("New password").fill("changed password 77");
    await clickAndLoad(page, page.getByRole("button", { name: "Change password" }));
    await page.locator(".flash", { hasText: "Password changed" }).waitFor();
    await opage.goto("/domains");
    await opage.waitForURL((url) => url.pathname === "/login");

    // Sign out all other sessions.
    await logIn(opage, email, "changed password 77");
    await opage.waitForURL((url) => url.pathname === "/");
    await clickAndLoad(page, page.getByRole("button", { name: "Sign out all other sessions" }));
    await page.locator(".flash", { hasText: "Signed out 1 other session" }).waitFor();
    await opage.goto("/domains");
    await opage.waitForURL((url) => url.pathname === "/login");
    await other.close();

    // Notifications off, and saved.
    const box = page.locator("#notifications input[type=checkbox]");
    assert.equal(await box.isChecked(), true);
    await box.uncheck();
    await clickAndLoad(page, page.locator("#notifications").getByRole("button", { name: "Save" }));
    await page.locator(".flash", { hasText: "Owner notifications are off" }).waitFor();
    assert.equal(await page.locator("#notifications input[type=checkbox]").isChecked(), false);

    // Change email: takes effect with the link mailed to the new address.
    const moved = uniqueEmail("moved");
    await page.getByLabel("New email").fill(moved);
    await page.locator("#email").getByLabel("Current password").fill("changed password 77");
    await clickAndLoad(page, page.getByRole("button", { name: "Send the confirmation link" }));
    await page.locator(".flash", { hasText: `We sent a link to ${moved}` }).waitFor();
    await waitForMail(email, "address is changing");
    await page.goto(linkIn(await waitForMail(moved, "new email"), "/verify-email"));
    await page.getByRole("heading", { name: "Address changed" }).waitFor();

    // Delete the workspace: its name must be typed.
    await page.goto("/settings/account");
    await page.getByLabel("Type the workspace's name to confirm").fill("wrong name");
    await clickAndLoad(page, page.getByRole("button", { name: "Delete this workspace" }));
    await expectFlashError(page, "Name must be the workspace's name");
    await page.getByLabel("Type the workspace's name to confirm").fill(workspace);
    await clickAndLoad(page, page.getByRole("button", { name: "Delete this workspace" }));
    await page.waitForURL((url) => url.pathname === "/login");
    await page.locator(".flash", { hasText: `The workspace ${workspace} was deleted` }).waitFor();
    await waitForMail(moved, "was deleted");

    // Delete the account (its new empty workspace goes with it).
    await logIn(page, moved, "changed password 77");
    await page.waitForURL((url) => url.pathname === "/");
    await page.goto("/settings/account");
    await page.locator("#delete-account").getByLabel("Current password").fill("changed password 77");
    await clickAndLoad(page, page.getByRole("button", { name: "Delete my account" }));
    await page.locator(".flash", { hasText: "Your account was deleted" }).waitFor();
    await logIn(page, moved, "changed password 77");
    await expectFlashError(page, "Incorrect email or password");
  });
});
