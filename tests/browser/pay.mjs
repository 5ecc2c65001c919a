// End-to-end test of the citizen's side in a real headless Chromium at a phone's size (driven by
// playwright-core from tests/browser/node_modules; it never downloads a browser).
//
// The officer's screen links the case's printable slip; the slip is printed (PDF, A5) and
// photographed (slip.png, for the Rust side to decode its QR); the phone opens the address the
// QR carries, sees the case and a VietQR for exactly what is left; a signed SePay notification
// (HMAC-SHA256, as SePay sends it) pays it; the page turns to "Thanh toán thành công" live and
// links the receipt, which shows the agency's MST and its number.
//
// Inputs (environment): FEELEDGER_BASE_URL, FEELEDGER_OFFICER_TOKEN, FEELEDGER_CASE_CODE,
// FEELEDGER_SEPAY_HMAC_SECRET, FEELEDGER_OUT_DIR, FEELEDGER_SCREENSHOT_DIR, FEELEDGER_CHROMIUM.
// Prints one JSON line on success: {"slipPng", "slipPayload", "qrPng", "qrPayload", "receiptText", ...}.

import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEADLINE_MS = 100_000;

function env(name, fallback) {
  const value = process.env[name] || fallback;
  if (!value) throw new Error(`missing ${name}`);
  return value;
}

const config = {
  baseUrl: env("FEELEDGER_BASE_URL").replace(/\/$/, ""),
  officerToken: env("FEELEDGER_OFFICER_TOKEN"),
  caseCode: env("FEELEDGER_CASE_CODE"),
  sepaySecret: env("FEELEDGER_SEPAY_HMAC_SECRET"),
  out: resolve(env("FEELEDGER_OUT_DIR")),
  screenshots: resolve(env("FEELEDGER_SCREENSHOT_DIR")),
  chromium: env("FEELEDGER_CHROMIUM", "/usr/bin/chromium"),
};

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** A SePay credit notification, signed as SePay's HMAC mode does. */
async function sepayNotification(amount, content) {
  const body = JSON.stringify({
    id: 914001, gateway: "VietinBank", transactionDate: "2026-11-29 09:15:00", accountNumber: "113366668888",
    code: null, content, transferType: "in", transferAmount: amount, accumulated: 19077000,
    subAccount: null, referenceCode: "FT914001",
  });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac("sha256", config.sepaySecret).update(`${timestamp}.${body}`).digest("hex");
  const response = await fetch(`${config.baseUrl}/webhooks/sepay`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sepay-timestamp": timestamp, "x-sepay-signature": signature },
    body,
  });
  return { status: response.status, body: await response.json() };
}

async function main() {
  mkdirSync(config.out, { recursive: true });
  mkdirSync(config.screenshots, { recursive: true });
  const playwright = pathToFileURL(join(REPO, "tests", "browser", "node_modules", "playwright-core", "index.mjs"));
  const { chromium } = await import(playwright.href);
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const problems = [];
  const deadline = setTimeout(() => {
    console.error(`the browser test did not finish within ${DEADLINE_MS / 1000} s`);
    browser.close().finally(() => process.exit(1));
  }, DEADLINE_MS);
  const report = { steps: [] };
  const step = (name) => report.steps.push(name);
  try {
    // 1. The officer's screen links the slip of the case it shows.
    const desk = await browser.newContext({ viewport: { width: 1366, height: 768 }, deviceScaleFactor: 2, locale: "vi-VN" });
    const officer = await desk.newPage();
    officer.on("pageerror", (e) => problems.push(`officer: ${e.message}`));
    await officer.goto(`${config.baseUrl}/counter/quay-1?token=${encodeURIComponent(config.officerToken)}`);
    await officer.fill("#search-case-code", config.caseCode);
    await officer.click("#search-submit");
    await officer.waitForFunction((code) => document.getElementById("case-code").textContent === code, config.caseCode);
    const slipHref = await officer.getAttribute("#print-slip", "href");
    check(slipHref.startsWith(`/cases/${encodeURIComponent(config.caseCode)}/slip?token=`), `slip link ${slipHref}`);
    step("the officer's screen links the slip");

    // 2. The slip: printed on A5, photographed for its QR.
    const slip = await desk.newPage();
    await slip.goto(`${config.baseUrl}${slipHref}`);
    const slipPayload = await slip.getAttribute("[data-testid=slip-qr]", "data-qr-payload");
    const slipText = (await slip.textContent("body")).replace(/\s+/g, " ");
    check(slipText.includes(config.caseCode), "the slip shows the case code");
    await slip.pdf({ path: join(config.out, "slip.pdf"), preferCSSPageSize: true });
    await slip.setViewportSize({ width: 640, height: 900 });
    await slip.screenshot({ path: join(config.screenshots, "slip.png"), fullPage: true });
    const slipPng = join(config.out, "slip-qr.png");
    await slip.locator("[data-testid=slip-qr]").screenshot({ path: slipPng });
    report.slipPng = slipPng;
    report.slipPayload = slipPayload;
    report.slipText = slipText;
    step("the slip printed and photographed");

    // 3. A phone opens the address the QR carries.
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "vi-VN",
    });
    const page = await phone.newPage();
    page.on("pageerror", (e) => problems.push(`pay: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`pay console: ${m.text()}`);
    });
    await page.goto(slipPayload);
    await page.waitForSelector("body[data-state='waiting']");
    await page.waitForFunction(() => {
      const img = document.getElementById("qr-image");
      return img && !img.hidden && img.complete && img.naturalWidth > 0;
    });
    const text = (await page.textContent("body")).replace(/\s+/g, " ");
    check(text.includes(config.caseCode), "the page shows the case code");
    check(text.includes("******8870"), "the payer's masked id");
    check(!text.includes("079201008870"), "never the full id");
    const transfer = (await page.textContent("#transfer-content")).trim();
    check(transfer === config.caseCode, `transfer content ${transfer}`);
    const deepLink = await page.getAttribute("#bank-app-link", "href");
    check(deepLink.startsWith("https://dl.vietqr.io/pay?") && deepLink.includes("@icb"), `deep link ${deepLink}`);
    report.qrPayload = await page.getAttribute("#qr-image", "data-payload");
    report.outstanding = (await page.textContent("#outstanding")).trim();
    await page.waitForSelector("body[data-live='ws']");
    await page.screenshot({ path: join(config.screenshots, "pay.png"), fullPage: true });
    const qrPng = join(config.out, "pay-qr.png");
    await page.locator("#qr-image").screenshot({ path: qrPng });
    report.qrPng = qrPng;
    step("the phone shows the case and its QR, live");

    // 4. The bank tells us the money arrived: the page turns to paid without a reload.
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    const amount = Number(report.outstanding.replace(/\D/g, ""));
    const notified = await sepayNotification(amount, `MBVCB.3278907687.${config.caseCode}.CT tu 0123`);
    check(notified.status === 200, `the notification was accepted: ${JSON.stringify(notified)}`);
    await page.waitForSelector("body[data-state='paid']");
    await page.waitForSelector("[data-testid=receipt-link]");
    check(await page.evaluate(() => window.__sameDocument === true), "no reload");
    check((await page.textContent("#paid-box")).includes("Thanh toán thành công"), "paid");
    await page.screenshot({ path: join(config.screenshots, "pay-paid.png"), fullPage: true });
    step("the page turned to paid live and links the receipt");

    // 5. The receipt.
    await page.click("[data-testid=receipt-link]");
    await page.waitForSelector("h1");
    report.receiptText = (await page.textContent("body")).replace(/\s+/g, " ");
    step("the receipt opens");
    check(problems.length === 0, `no page errors: ${problems.join("; ")}`);
    console.log(JSON.stringify(report));
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
