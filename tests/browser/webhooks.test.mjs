// Outbound webhooks in a real browser (seeds 002 and 003): create one with two conditions and a
// URL token, see a clear error next to a bad condition, press Test and read the result, pause
// and resume, and redeliver from the log. A local receiver records what Postback sends.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import {
  TEST_OPTIONS, withPage, closeBrowser, clickAndLoad, signUp, openNewDomainKeys,
  createKey, sendEvent,
} from "./lib.mjs";

after(closeBrowser);

/** A receiver on loopback that records every request and answers 200 (or `status.code`). */
async function startReceiver() {
  const got = [];
  const status = { code: 200 };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ url: req.url, headers: req.headers, body });
      res.writeHead(status.code, { "Content-Type": "application/json" });
      res.end('{"received":true}');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return { got, status, base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

async function until(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reloads the webhook page until the newest delivery shows `status`. */
async function expectNewestDelivery(page, status) {
  await until(`a ${status} delivery`, async () => {
    await page.reload();
    const first = page.locator("#deliveries tbody tr").first();
    if (!(await first.count())) return false;
    return (await first.locator(".delivery-status").textContent()).trim() === status;
  });
}

test("webhooks: create with conditions, test, pause and resume, redeliver", TEST_OPTIONS, async (t) => {
  const receiver = await startReceiver();
  try {
    await withPage(t, async (page) => {
      await signUp(page);
      await openNewDomainKeys(page, "hooks.example.com");
      const key = await createKey(page, "Backend");

      await clickAndLoad(page, page.getByRole("link", { name: "Webhooks", exact: true }).first());
      await page.getByRole("heading", { level: 1, name: "Webhooks" }).waitFor();
      await page.getByText("No webhooks yet").waitFor();
      await clickAndLoad(page, page.getByRole("link", { name: "New webhook" }));

      // URL with a token inserted by clicking it.
      const url = page.getByLabel("Endpoint URL");
      await url.fill(`${receiver.base}/conv?amount=`);
      await page.locator('button[data-token="[revenue]"]').click();
      assert.equal(await url.inputValue(), `${receiver.base}/conv?amount=[revenue]`);
      await page.getByLabel("Conversion", { exact: true }).check();

      // Two conditions; the first with a value that is not a number.
      await page.getByRole("button", { name: "Add condition" }).click();
      await page.getByRole("button", { name: "Add condition" }).click();
      const rows = page.locator("#condition-rows .condition-row");
      assert.equal(await rows.count(), 2);
      await rows.nth(0).getByLabel("Field").selectOption("revenue");
      assert.equal(await rows.nth(0).getByLabel("Which click").isVisible(), false, "revenue has no 1st/Last choice");
      await rows.nth(0).getByLabel("Operator").selectOption("greater_than");
      await rows.nth(0).getByLabel("Value").fill("fifty");
      await rows.nth(1).getByLabel("Field").selectOption("utm_source");
      assert.equal(await rows.nth(1).getByLabel("Which click").isVisible(), true, "utm_source has the 1st/Last choice");
      await rows.nth(1).getByLabel("Field").selectOption("event");
      await rows.nth(1).getByLabel("Operator").selectOption("equals");
      await rows.nth(1).getByLabel("Value").fill("purchase");
      await clickAndLoad(page, page.getByRole("button", { name: "Create webhook" }));

      // The error sits next to the row it is about, and what was typed is kept.
      await page.getByText("conditions[0].value: revenue needs a number").waitFor();
      const kept = page.locator("#condition-rows .condition-row");
      assert.equal(await kept.count(), 2);
      assert.equal(await kept.nth(1).getByLabel("Value").inputValue(), "purchase");
      assert.equal(await page.getByLabel("Endpoint URL").inputValue(), `${receiver.base}/conv?amount=[revenue]`);
      await kept.nth(0).getByLabel("Value").fill("50");
      await clickAndLoad(page, page.getByRole("button", { name: "Create webhook" }));
      await page.getByText("Webhook created").waitFor();
      await page.locator("#webhook-status", { hasText: "Active" }).waitFor();

      // Test: a sample event now, tokens filled with sample values.
      await clickAndLoad(page, page.getByRole("button", { name: "Test", exact: true }));
      await page.locator("#test-result").waitFor();
      assert.match(await page.locator("#test-status").textContent(), /200/);
      assert.match(await page.locator("#test-time").textContent(), /\d+ ms/);
      assert.match(await page.locator("#test-body").textContent(), /received/);
      assert.equal(receiver.got.length, 1);
      assert.equal(receiver.got[0].url, "/conv?amount=99.99");

      // Reveal the signing secret.
      await clickAndLoad(page, page.getByRole("button", { name: "Reveal" }));
      assert.match(await page.locator("#secret-value").textContent(), /^whsec_/);

      // Only the event over 50 fires.
      const small = await sendEvent(key, { email: "a@example.com", event: "purchase", value: 10 });
      assert.equal(small.status, 200);
      const big = await sendEvent(key, { email: "b@example.com", event: "purchase", value: 80 });
      assert.equal(big.status, 200);
      await expectNewestDelivery(page, "succeeded");
      assert.equal(await page.locator("#deliveries tbody tr").count(), 1);
      await until("the delivery", () => receiver.got.length === 2);
      assert.equal(receiver.got[1].url, "/conv?amount=80");
      assert.ok(receiver.got[1].headers["x-webhook-signature"].startsWith("sha256="));

      // Pause: new deliveries are held, not sent.
      await clickAndLoad(page, page.getByRole("button", { name: "Pause" }));
      await page.locator("#webhook-status", { hasText: "Paused" }).waitFor();
      await page.locator("#paused-note").waitFor();
      const held = await sendEvent(key, { email: "c@example.com", event: "purchase", value: 90 });
      assert.equal(held.status, 200);
      await expectNewestDelivery(page, "held");
      assert.equal(receiver.got.length, 2, "nothing sent while paused");

      // Resume sends what was held.
      await clickAndLoad(page, page.getByRole("button", { name: "Resume" }));
      await page.getByText("Webhook resumed").waitFor();
      await expectNewestDelivery(page, "succeeded");
      await until("the held delivery", () => receiver.got.length === 3);
      assert.equal(receiver.got[2].url, "/conv?amount=90");

      // Redeliver from the log: the same delivery id again.
      await clickAndLoad(page, page.getByRole("button", { name: "Redeliver" }).first());
      await page.getByText("Queued for redelivery.").waitFor();
      await until("the redelivery", () => receiver.got.length === 4);
      assert.equal(receiver.got[3].headers["webhook-id"], receiver.got[2].headers["webhook-id"]);

      // The list shows it, with its trigger and conditions.
      await clickAndLoad(page, page.getByRole("link", { name: "Webhooks", exact: true }).first());
      const row = page.locator("#webhooks tbody tr").first();
      assert.match(await row.textContent(), /Conversion/);
      assert.match(await row.textContent(), /Active/);
    });
  } finally {
    await receiver.close();
  }
});

test("webhooks: rotate with an overlap and end it, limits and custom headers, resend failed", { timeout: 180_000 }, async (t) => {
  const receiver = await startReceiver();
  // Where it got to, with the time since the start (shown if it fails).
  const started = Date.now();
  const step = (what) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  try {
    await withPage(t, async (page) => {
      await signUp(page);
      await openNewDomainKeys(page, "recover.example.com");
      const key = await createKey(page, "Backend");
      await clickAndLoad(page, page.getByRole("link", { name: "Webhooks", exact: true }).first());
      await clickAndLoad(page, page.getByRole("link", { name: "New webhook" }));
      await page.getByLabel("Endpoint URL").fill(`${receiver.base}/hook`);
      await clickAndLoad(page, page.getByRole("button", { name: "Create webhook" }));
      await page.getByText("Webhook created").waitFor();

      step("webhook created");
      // Rotate with the default 24 h overlap: the new secret is shown, and until when the old
      // one still signs.
      assert.equal(await page.getByLabel("Old secret keeps working for").inputValue(), "86400");
      await clickAndLoad(page, page.getByRole("button", { name: "Rotate" }));
      assert.match(await page.locator("#secret-value").textContent(), /^whsec_/);
      await page.locator("#overlap-note").waitFor();
      assert.match(await page.locator("#overlap-until").textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      const during = await sendEvent(key);
      assert.equal(during.status, 200);
      await until("the delivery during the overlap", () => receiver.got.length === 1);
      assert.equal(receiver.got[0].headers["webhook-signature"].split(" ").length, 2);
      assert.ok(receiver.got[0].headers["x-webhook-signature-previous"].startsWith("sha256="));

      step("delivered during the overlap");
      // End it now: one signature from the next delivery on.
      await clickAndLoad(page, page.getByRole("button", { name: "End overlap now" }));
      await page.getByText("Overlap ended").waitFor();
      assert.equal(await page.locator("#overlap-note").count(), 0);
      await sendEvent(key);
      await until("the delivery after the overlap", () => receiver.got.length === 2);
      assert.equal(receiver.got[1].headers["webhook-signature"].split(" ").length, 1);
      assert.equal(receiver.got[1].headers["x-webhook-signature-previous"], undefined);

      step("overlap ended");
      // Limits and headers: a signature header is refused next to the form, as typed.
      await page.getByLabel("Rate limit").fill("50");
      await page.getByLabel("Concurrency cap").fill("5");
      await page.getByLabel("Custom headers").fill("X-Webhook-Signature: forged");
      await clickAndLoad(page, page.getByRole("button", { name: "Save delivery settings" }));
      assert.match(await page.locator("#delivery-error").textContent(), /X-Webhook-Signature is set by Postback/);
      assert.equal(await page.getByLabel("Rate limit").inputValue(), "50", "what was typed is kept");
      await page.getByLabel("Custom headers").fill("Authorization: Bearer tok_live_123456\nX-Tenant: acme");
      await clickAndLoad(page, page.getByRole("button", { name: "Save delivery settings" }));
      await page.getByText("Delivery settings saved.").waitFor();
      assert.equal(await page.getByLabel("Rate limit").inputValue(), "50");
      assert.equal(await page.getByLabel("Concurrency cap").inputValue(), "5");
      assert.equal(await page.getByLabel("Custom headers").inputValue(), "Authorization: ••••3456\nX-Tenant: acme");

      step("delivery settings saved");
      // An outage: two deliveries fail every attempt.
      receiver.status.code = 503;
      await sendEvent(key, { email: "x@example.com", event: "purchase", value: 1 });
      await sendEvent(key, { email: "y@example.com", event: "purchase", value: 2 });
      await until("two failed deliveries", async () => {
        await page.reload();
        const rows = page.locator("#deliveries tbody tr .delivery-status");
        return (await rows.nth(0).textContent()).trim() === "failed"
          && (await rows.nth(1).textContent()).trim() === "failed";
      });
      assert.match(await page.locator("#delivery-backlog").textContent(), /^0 deliveries waiting/);

      step("two deliveries failed");
      // Back up: resend what failed in the last hour; each keeps its id.
      receiver.status.code = 200;
      const failedIds = new Set(receiver.got.slice(2).map((r) => r.headers["webhook-id"]));
      assert.equal(failedIds.size, 2);
      const before = receiver.got.length;
      const since = new Date(Date.now() - 3600_000).toISOString().slice(0, 16);
      await page.getByLabel("Failed since (UTC)").fill(since);
      await clickAndLoad(page, page.getByRole("button", { name: "Resend failed" }));
      await page.getByText("2 failed deliveries queued again").waitFor();
      await until("the recovery to finish", async () => {
        await page.reload();
        return (await page.locator("#recovery-succeeded").textContent()).trim() === "2";
      });
      assert.equal(await page.locator("#recovery-queued").textContent(), "2");
      assert.equal(await page.locator("#recovery-failed").textContent(), "0");
      const resent = receiver.got.slice(before);
      assert.equal(resent.length, 2);
      assert.deepEqual(new Set(resent.map((r) => r.headers["webhook-id"])), failedIds);
      assert.equal(resent[0].headers["authorization"], "Bearer tok_live_123456");
      assert.equal(resent[0].headers["x-tenant"], "acme");

      step("recovered");
      // Each action is in the workspace's audit log, without the header values.
      await clickAndLoad(page, page.getByRole("link", { name: "Settings", exact: true }).first());
      const audit = await page.locator("#audit").textContent();
      for (const action of ["webhook.secret_rotated", "webhook.secret_overlap_ended", "webhook.delivery_settings_changed", "webhook.recovered"]) {
        assert.match(audit, new RegExp(action.replace(/[.]/g, "\\.")));
      }
      assert.doesNotMatch(audit, /tok_live/);
      step("audit log read");
    });
  } finally {
    await receiver.close();
    step("receiver closed");
  }
});
