// The printable deposit voucher (mẫu C1-02/NS) in a real headless Chromium: the page is opened
// with a finance token, screenshotted, and printed to PDF on A4 exactly as a clerk's browser
// would print it. The text checked is what the print layout renders (print media), and the PDF
// itself is checked for its page count and size.
//
// Inputs (environment): FEELEDGER_VOUCHER_URL (with ?token=…), FEELEDGER_OUT_DIR (voucher.pdf),
// FEELEDGER_SCREENSHOT_DIR (voucher.png), FEELEDGER_CHROMIUM (default /usr/bin/chromium).
// Prints one JSON line: {"pdf", "pdfBytes", "pages", "mediaBox", "printedText"}.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing ${name}`);
  return value;
}

async function main() {
  const url = required("FEELEDGER_VOUCHER_URL");
  const out = resolve(required("FEELEDGER_OUT_DIR"));
  const screenshots = resolve(required("FEELEDGER_SCREENSHOT_DIR"));
  mkdirSync(out, { recursive: true });
  mkdirSync(screenshots, { recursive: true });
  const playwright = pathToFileURL(join(REPO, "api", "web", "node_modules", "playwright-core", "index.mjs"));
  const { chromium } = await import(playwright.href);
  const browser = await chromium.launch({
    executablePath: process.env.FEELEDGER_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const deadline = setTimeout(() => {
    console.error("the voucher test did not finish within 60 s");
    browser.close().finally(() => process.exit(1));
  }, 60_000);
  try {
    const context = await browser.newContext({ viewport: { width: 1000, height: 1300 }, locale: "vi-VN" });
    const page = await context.newPage();
    const problems = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    const response = await page.goto(url);
    if (!response || response.status() !== 200) throw new Error(`the voucher page answered ${response?.status()}`);
    await page.screenshot({ path: join(screenshots, "voucher.png"), fullPage: true });

    await page.emulateMedia({ media: "print" });
    const printedText = await page.evaluate(() => document.body.innerText.replace(/\s+/g, " "));
    const pdfPath = join(out, "voucher.pdf");
    await page.pdf({ path: pdfPath, format: "A4", printBackground: true, preferCSSPageSize: true });
    const pdf = readFileSync(pdfPath).toString("latin1");
    const pages = (pdf.match(/\/Type\s*\/Page[^s]/g) || []).length;
    const mediaBox = (pdf.match(/\/MediaBox\s*\[([^\]]*)\]/) || [])[1]?.trim() ?? null;
    if (problems.length) throw new Error(`console errors: ${problems.join("; ")}`);
    writeFileSync(join(out, "printed.txt"), printedText);
    console.log(JSON.stringify({ pdf: pdfPath, pdfBytes: pdf.length, pages, mediaBox, printedText }));
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
