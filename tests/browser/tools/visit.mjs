// Runs the tracking snippet on a real page in Debian Chromium, for tests/e2e/tracking.rs:
//   node tests/browser/tools/visit.mjs <postback base URL> <site id> <hostname> [landing query]
// Serves a landing page with the tag and a sign-up form at http://<hostname>:<port>/ (a
// *.localhost name, which Chromium resolves to loopback), opens it with click ids and UTMs in
// the query, submits an email through the form and one through postback.identify(), and prints
// JSON with the visitor cookie it saw.
import http from "node:http";
import { chromium } from "playwright-core";

const [base, site, hostname, query] = process.argv.slice(2);
const landingQuery = query || "utm_source=facebook&utm_campaign=spring&fbclid=IwAR-test";
if (!base || !site || !hostname) {
  console.error("usage: visit.mjs <base> <site> <hostname>");
  process.exit(2);
}

const page = `<!doctype html><html><head><title>Landing</title>
<script async src="${base}/__cc/t.js" data-site="${site}"></script></head>
<body><h1>Spring sale</h1>
<form id="signup" action="/thanks" method="get">
  <input type="email" name="email" aria-label="Email"><button type="submit">Sign up</button>
</form></body></html>`;
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(req.url.startsWith("/thanks") ? "<!doctype html><p>Thanks</p>" : page);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(e.message));
  const loaded = () =>
    tab.waitForFunction(() => window.postback && typeof window.postback.identify === "function", null, { timeout: 15_000 });
  // The snippet reports the landing as soon as it runs; the caller checks what was stored.
  await tab.goto(`http://${hostname}:${port}/landing?${landingQuery}`);
  await loaded();
  await tab.getByLabel("Email").fill("Visitor@Example.com");
  await tab.getByRole("button", { name: "Sign up" }).click();
  await tab.waitForURL(/\/thanks/, { timeout: 15_000 });
  // The script API too, back on a page with the snippet.
  await tab.goto(`http://${hostname}:${port}/landing`);
  await loaded();
  await tab.evaluate(() => window.postback.identify("second@example.com"));
  await tab.waitForTimeout(500);
  const cookies = await context.cookies(`http://${hostname}:${port}/`);
  const vid = (cookies.find((c) => c.name === "_pb_vid") || {}).value || null;
  console.log(JSON.stringify({ vid, errors }));
} finally {
  await browser.close();
  server.close();
}
