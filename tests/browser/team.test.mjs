// The team on the Settings page in a real browser: an owner invites an existing account, which
// joins with the mailed link; invites another email and withdraws it; changes the member's role;
// the member switches between workspaces; the owner removes the member after confirming.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, uniqueEmail, logIn, text, waitForMail, linkIn,
} from "./lib.mjs";

after(closeBrowser);

test("team: invite, join by mail, change role, switch workspace, remove", TEST_OPTIONS, async (t) => {
  let mate;
  await withPage(t, async (page) => {
    mate = await signUp(page);
  });
  await withPage(t, async (page) => {
    const owner = await signUp(page);
    const ownerWorkspace = `Workspace ${owner.split("@")[0]}`;
    await clickAndLoad(page, page.getByRole("link", { name: "Settings", exact: true }));

    await page.getByLabel("Add by email").fill(mate);
    await clickAndLoad(page, page.getByRole("button", { name: "Add member" }));
    await page.locator(".flash", { hasText: `Invited ${mate}` }).waitFor();
    // The member joins with the mailed link, in their own browser.
    const other = await page.context().browser().newContext({ baseURL: new URL(page.url()).origin });
    const mpage = await other.newPage();
    await mpage.goto("/login");
    await logIn(mpage, mate);
    await mpage.goto(linkIn(await waitForMail(mate, "invited you"), "/invitations/accept"));
    await clickAndLoad(mpage, mpage.getByRole("button", { name: `Join ${ownerWorkspace}` }));
    await mpage.locator(".flash", { hasText: `You joined ${ownerWorkspace} as member` }).waitFor();
    await page.goto("/settings");
    const row = () => page.locator(`#members tr[data-member="${mate}"]`);
    assert.match(await text(row()), /Member/);

    const stranger = uniqueEmail("invitee");
    await page.getByLabel("Add by email").fill(stranger);
    await clickAndLoad(page, page.getByRole("button", { name: "Add member" }));
    await page.locator(".flash", { hasText: `Invited ${stranger}` }).waitFor();
    const invited = page.locator(`#members tr[data-invitation="${stranger}"]`);
    assert.match(await text(invited), /Invited/);
    await clickAndLoad(page, invited.getByRole("button", { name: "Withdraw" }));
    await page.locator(".flash", { hasText: "Invitation withdrawn" }).waitFor();
    assert.equal(await page.locator(`#members tr[data-invitation="${stranger}"]`).count(), 0);

    await row().getByLabel(`Role of ${mate}`).selectOption("owner");
    await clickAndLoad(page, row().getByRole("button", { name: "Change role" }));
    await page.locator(".flash", { hasText: `${mate} is now owner` }).waitFor();

    // The member switches to their own workspace and back to the owner's.
    const mateWorkspace = `Workspace ${mate.split("@")[0]}`;
    await mpage.goto("/settings");
    await clickAndLoad(mpage, mpage.getByRole("button", { name: `Switch to ${mateWorkspace}` }));
    await mpage.locator(".flash", { hasText: `Switched to ${mateWorkspace}` }).waitFor();
    await mpage.goto("/settings");
    await clickAndLoad(mpage, mpage.getByRole("button", { name: `Switch to ${ownerWorkspace}` }));
    await mpage.locator(".flash", { hasText: `Switched to ${ownerWorkspace}` }).waitFor();
    await mpage.goto("/settings");
    assert.match(await text(mpage.locator("#workspaces")), new RegExp(`${ownerWorkspace} \\(owner\\) Current`));
    await other.close();

    await clickAndLoad(page, row().getByRole("link", { name: "Remove" }));
    await page.getByRole("heading", { name: `Remove ${mate}?` }).waitFor();
    await clickAndLoad(page, page.getByRole("button", { name: "Remove member" }));
    await page.locator(".flash", { hasText: "Removed from the workspace" }).waitFor();
    assert.equal(await page.locator(`#members tr[data-member="${mate}"]`).count(), 0);
  });
});
