// End-to-end test of the two counter screens in a real headless Chromium (driven by
// playwright-core from tests/browser/node_modules; it never downloads a browser).
//
// The officer assesses a case and creates the payment QR on /counter/quay-1; the citizen's screen
// /display/quay-1 shows the QR; two payments arrive through the API (not through the page) and both
// screens follow them live, over WebSocket, without a reload. A last page whose display-feed socket
// is cut proves the polling fallback.
//
// Inputs (argv `--name=value` wins over the environment):
//   --base-url        FEELEDGER_BASE_URL         e.g. http://127.0.0.1:18080
//   --officer-token   FEELEDGER_OFFICER_TOKEN    officer of H34.22.6 at counter quay-1
//   --display-token   FEELEDGER_DISPLAY_TOKEN    display of quay-1
//   --out             FEELEDGER_OUT_DIR          qr.png, extra and failure screenshots
//   --screenshots     FEELEDGER_SCREENSHOT_DIR   counter.png and display.png (docs/screenshots)
//   --chromium        FEELEDGER_CHROMIUM         default /usr/bin/chromium
// Prints one JSON line on success: {"payload", "qrPng", "caseCode", "steps": [{name, ms}]}.

import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const AGENCY = "H34.22.6";
const COUNTER = "quay-1";
const DEADLINE_MS = 100_000;

function option(name, envName, fallback) {
  const prefix = `--${name}=`;
  const fromArgv = process.argv.slice(2).find((a) => a.startsWith(prefix));
  const value = fromArgv ? fromArgv.slice(prefix.length) : process.env[envName] || fallback;
  if (value === undefined || value === "") throw new Error(`missing --${name} (or ${envName})`);
  return value;
}

const config = {
  baseUrl: option("base-url", "FEELEDGER_BASE_URL").replace(/\/$/, ""),
  officerToken: option("officer-token", "FEELEDGER_OFFICER_TOKEN"),
  displayToken: option("display-token", "FEELEDGER_DISPLAY_TOKEN"),
  out: resolve(option("out", "FEELEDGER_OUT_DIR")),
  screenshots: resolve(option("screenshots", "FEELEDGER_SCREENSHOT_DIR", join(REPO, "docs", "screenshots"))),
  chromium: option("chromium", "FEELEDGER_CHROMIUM", "/usr/bin/chromium"),
};

/** Today in Vietnam as YYMMDD (case codes are dated in Vietnam time). */
function todayCode() {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Ho_Chi_Minh", year: "2-digit", month: "2-digit", day: "2-digit" })
      .formatToParts(new Date())
      .map((p) => [p.type, p.value]),
  );
  return parts.year + parts.month + parts.day;
}

const CASE = `${AGENCY}-${todayCode()}-0002`;
/** The sample case `serve --demo` leaves at quay-1 with a fresh QR. */
const DEMO_CASE = `${AGENCY}-${todayCode()}-0001`;

async function graphql(token, query, variables) {
  const response = await fetch(`${config.baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function recordPayment(amount, reference) {
  return graphql(
    config.officerToken,
    "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid outstanding } }",
    { input: { caseCode: CASE, amount, channel: "POS", reference, idempotencyKey: `browser-test-${reference}` } },
  );
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Waits until the page's text (whitespace-normalised) contains `text`. */
async function waitForText(page, text, timeout = 15_000) {
  await page.waitForFunction(
    (wanted) => document.body.textContent.replace(/\s+/g, " ").includes(wanted),
    text,
    { timeout },
  );
}

async function main() {
  mkdirSync(config.out, { recursive: true });
  mkdirSync(config.screenshots, { recursive: true });
  const playwright = pathToFileURL(join(REPO, "tests", "browser", "node_modules", "playwright-core", "index.mjs"));
  const { chromium } = await import(playwright.href);

  const steps = [];
  const started = Date.now();
  let last = started;
  const step = (name) => {
    const at = Date.now();
    steps.push({ name, ms: at - last });
    last = at;
  };

  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const pages = {};
  const problems = [];
  const watchPage = (name, page, strict) => {
    pages[name] = page;
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (error) => problems.push(`${name}: uncaught ${error.message}`));
    page.on("console", (message) => {
      // A CSP violation or a script error shows up here; the fallback page expects load errors.
      if (strict && message.type() === "error") problems.push(`${name}: console error: ${message.text()}`);
    });
  };

  const deadline = setTimeout(() => {
    console.error(`the browser test did not finish within ${DEADLINE_MS / 1000} s`);
    browser.close().finally(() => process.exit(1));
  }, DEADLINE_MS);

  try {
    const officerContext = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "vi-VN" });
    const displayContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "vi-VN" });
    const officer = await officerContext.newPage();
    const display = await displayContext.newPage();
    watchPage("officer", officer, true);
    watchPage("display", display, true);
    let displayPosts = 0;
    display.on("request", (request) => {
      if (request.method() === "POST" && new URL(request.url()).pathname === "/graphql") displayPosts += 1;
    });

    // 1. Both screens open with their tokens and go live over WebSocket.
    await Promise.all([
      officer.goto(`${config.baseUrl}/counter/${COUNTER}?token=${encodeURIComponent(config.officerToken)}`),
      display.goto(`${config.baseUrl}/display/${COUNTER}?token=${encodeURIComponent(config.displayToken)}`),
    ]);
    await Promise.all([
      officer.waitForSelector("body[data-live='ws']"),
      display.waitForSelector("body[data-live='ws']"),
    ]);
    for (const page of [officer, display]) {
      check(!page.url().includes("token="), `the token is removed from the address bar (${page.url()})`);
    }
    const markers = {};
    for (const [name, page] of Object.entries({ officer, display })) {
      markers[name] = await page.evaluate(() => {
        window.__testMarker = "still the same document";
        return window.__loadedAt;
      });
      check(typeof markers[name] === "number", `${name} sets window.__loadedAt`);
    }
    // The demo left today's sample case at this counter: the citizen sees its QR straight away.
    await waitForText(display, DEMO_CASE);
    await display.locator("#qr-image").waitFor({ state: "visible" });
    await officer.waitForFunction(() => document.getElementById("officer-name").textContent.includes("officer"));
    step("both screens open, live over WebSocket");

    // 2. The officer assesses the Kon Tum example (3 pages certified: 2,000 + 1,000) and creates the QR.
    await officer.fill("#assess-case-code", CASE);
    await officer.fill("#assess-procedure", "Chứng thực bản sao từ bản chính");
    await officer.fill("#assess-payer-name", "VÕ ĐẶNG NGỌC GIÀ");
    await officer.fill("#assess-payer-id", "079201008870");
    const codes = officer.locator("[data-testid=fee-line-code]");
    const quantities = officer.locator("[data-testid=fee-line-qty]");
    await codes.nth(0).selectOption("P-SAOY-2TRANG");
    await quantities.nth(0).fill("1");
    await officer.click("#assess-add-line");
    await codes.nth(1).selectOption("P-SAOY-TRANGTHEM");
    await quantities.nth(1).fill("1");
    check((await officer.textContent("#assess-total")).trim() === "3.000 VND", "the form's live total is 3.000 VND");
    await officer.click("#assess-submit");
    await officer.waitForFunction((code) => document.getElementById("case-code").textContent === code, CASE);
    check((await officer.textContent("#case-total")).trim() === "3.000 VND", "the case total is 3.000 VND");
    check(await officer.isHidden("#assess-error"), "no assessment error");
    await waitForText(display, "Vui lòng chờ mã QR thanh toán");
    step("officer assessed the case; the citizen's screen shows it");

    await officer.click("#create-qr");
    // 3. The citizen's screen shows the QR.
    const qrImage = display.locator("#qr-image");
    await qrImage.waitFor({ state: "visible" });
    await display.waitForFunction(() => {
      const img = document.getElementById("qr-image");
      return img && img.complete && img.naturalWidth > 0;
    });
    const payload = await qrImage.getAttribute("data-payload");
    check(payload && payload.startsWith("000201010212"), `a dynamic VietQR payload (${payload})`);
    check(payload.includes("54043000"), "the QR asks for 3000 VND");
    check(payload.includes(CASE), "the QR carries the case code as transfer content");
    for (const text of ["3.000 VND", "VÕ ĐẶNG NGỌC GIÀ", "******8870", CASE, "Mã hết hạn sau"]) {
      await waitForText(display, text);
    }
    const qrPng = join(config.out, "qr.png");
    await qrImage.screenshot({ path: qrPng });
    await officer.waitForFunction(
      (p) => document.getElementById("officer-qr-image").dataset.payload === p,
      payload,
    );
    await display.screenshot({ path: join(config.screenshots, "display.png") });
    step("the citizen's screen shows the QR");

    // 4. A partial payment arrives (through the API): both screens show the remainder, no reload.
    const postsBefore = displayPosts;
    await recordPayment("2000", "POS-000123");
    await waitForText(display, "Còn lại 1.000", 10_000);
    await waitForText(display, "Vui lòng chờ cán bộ tạo mã QR cho số tiền còn lại");
    await officer.waitForFunction(() => document.getElementById("case-outstanding").textContent === "1.000 VND", null, {
      timeout: 10_000,
    });
    await officer.waitForFunction(() => document.getElementById("payments-body").textContent.includes("POS-000123"));
    await officer.screenshot({ path: join(config.screenshots, "counter.png"), fullPage: true });
    await display.screenshot({ path: join(config.out, "display-partial.png") });
    step("a partial payment shows 'Còn lại 1.000 VND' on both screens");

    await recordPayment("1000", "POS-000124");
    await waitForText(display, "Thanh toán thành công", 10_000);
    await officer.waitForFunction(() => document.getElementById("case-status").dataset.status === "PAID", null, {
      timeout: 10_000,
    });
    await display.screenshot({ path: join(config.out, "display-paid.png") });
    await officer.screenshot({ path: join(config.out, "counter-paid.png"), fullPage: true });
    check(displayPosts === postsBefore, `the citizen's screen was updated by push, not HTTP (${displayPosts - postsBefore} POSTs)`);
    for (const [name, page] of Object.entries({ officer, display })) {
      const state = await page.evaluate(() => ({
        marker: window.__testMarker,
        loadedAt: window.__loadedAt,
        live: document.body.dataset.live,
      }));
      check(state.marker === "still the same document", `${name} was not reloaded`);
      check(state.loadedAt === markers[name], `${name} kept its __loadedAt`);
      check(state.live === "ws", `${name} stayed on WebSocket (${state.live})`);
    }
    step("full payment shows 'Thanh toán thành công' without a reload");

    // 5. Where the display feed's socket is cut at once (a proxy that breaks WebSockets), the
    //    citizen's screen polls.
    const fallbackContext = await browser.newContext({ viewport: { width: 800, height: 1280 }, locale: "vi-VN" });
    await fallbackContext.routeWebSocket("**/live/counter-display", (socket) => socket.close());
    const fallback = await fallbackContext.newPage();
    watchPage("fallback", fallback, false);
    await fallback.goto(`${config.baseUrl}/display/${COUNTER}?token=${encodeURIComponent(config.displayToken)}`);
    await fallback.waitForSelector("body[data-live='polling']");
    // Reconnecting polls too; after three sockets cut in a row the screen settles on polling.
    await fallback.waitForSelector("#live-indicator[data-state='polling']", { timeout: 20_000 });
    await waitForText(fallback, "Thanh toán thành công");
    check(
      (await fallback.textContent("#live-indicator")).includes("2 giây"),
      "the indicator says the screen is polling",
    );
    await fallback.screenshot({ path: join(config.out, "display-portrait-polling.png") });
    step("with its WebSocket cut, the citizen's screen falls back to polling");

    check(problems.length === 0, `no page errors:\n${problems.join("\n")}`);
    clearTimeout(deadline);
    await browser.close();
    process.stdout.write(`${JSON.stringify({ payload, qrPng, caseCode: CASE, steps, totalMs: Date.now() - started })}\n`);
  } catch (error) {
    clearTimeout(deadline);
    console.error(`browser test failed: ${error && error.stack ? error.stack : error}`);
    if (problems.length) console.error(`page problems:\n${problems.join("\n")}`);
    for (const [name, page] of Object.entries(pages)) {
      try {
        await page.screenshot({ path: join(config.out, `failure-${name}.png`), fullPage: true });
        console.error(`screenshot: ${join(config.out, `failure-${name}.png`)}`);
      } catch (_) {
        // the page may be gone
      }
    }
    await browser.close().catch(() => {});
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(`browser test failed: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
