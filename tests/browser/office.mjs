// The office pages in a real headless Chromium (playwright-core from tests/browser/node_modules):
//
// - /finance: the day's reconciliation with its exceptions, an unmatched credit assigned to a case
//   from the page, the treasury (due, overdue, its chart), and a payment arriving through the API
//   that the page follows live over WebSocket without a reload;
// - /oversight: the league table of the province, filtered by level, with its rate charts;
// - the printable monthly announcement (A4, "đạt" / "không đạt" per level, charts) and the
//   quarterly summary, printed to PDF;
// - /admin: agencies, fee schedules, targets (one set from the page) and a projection rebuilt
//   from the page with its live progress.
//
// Inputs (environment): FEELEDGER_BASE_URL, FEELEDGER_FINANCE_TOKEN, FEELEDGER_OFFICER_TOKEN,
// FEELEDGER_OVERSIGHT_TOKEN, FEELEDGER_ADMIN_TOKEN, FEELEDGER_AGENCY, FEELEDGER_DATE,
// FEELEDGER_CREDIT, FEELEDGER_ASSIGN_CASE, FEELEDGER_LIVE_CASE, FEELEDGER_LIVE_AMOUNT,
// FEELEDGER_ROOT, FEELEDGER_MONTH, FEELEDGER_OUT_DIR, FEELEDGER_SCREENSHOT_DIR, FEELEDGER_CHROMIUM.
// Prints one JSON line: {"leagueRows", "communeRows", "announcementPages", "mediaBox",
// "announcementText", "quarterText", "steps"}.

import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing ${name}`);
  return value;
}

const config = {
  base: required("FEELEDGER_BASE_URL").replace(/\/$/, ""),
  finance: required("FEELEDGER_FINANCE_TOKEN"),
  officer: required("FEELEDGER_OFFICER_TOKEN"),
  oversight: required("FEELEDGER_OVERSIGHT_TOKEN"),
  admin: required("FEELEDGER_ADMIN_TOKEN"),
  agency: required("FEELEDGER_AGENCY"),
  date: required("FEELEDGER_DATE"),
  credit: required("FEELEDGER_CREDIT"),
  refundCredit: required("FEELEDGER_REFUND_CREDIT"),
  assignCase: required("FEELEDGER_ASSIGN_CASE"),
  liveCase: required("FEELEDGER_LIVE_CASE"),
  liveAmount: required("FEELEDGER_LIVE_AMOUNT"),
  root: required("FEELEDGER_ROOT"),
  month: required("FEELEDGER_MONTH"),
  out: resolve(required("FEELEDGER_OUT_DIR")),
  screenshots: resolve(required("FEELEDGER_SCREENSHOT_DIR")),
  chromium: process.env.FEELEDGER_CHROMIUM || "/usr/bin/chromium",
};

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function graphql(token, query, variables) {
  const response = await fetch(`${config.base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const steps = [];
const started = Date.now();
function step(name) {
  steps.push({ name, ms: Date.now() - started });
}

async function pdfFacts(page, path) {
  await page.emulateMedia({ media: "print" });
  await page.pdf({ path, format: "A4", printBackground: true, preferCSSPageSize: true });
  const pdf = readFileSync(path).toString("latin1");
  return {
    pages: (pdf.match(/\/Type\s*\/Page[^s]/g) || []).length,
    mediaBox: (pdf.match(/\/MediaBox\s*\[([^\]]*)\]/) || [])[1]?.trim() ?? null,
  };
}

async function main() {
  mkdirSync(config.out, { recursive: true });
  mkdirSync(config.screenshots, { recursive: true });
  const playwright = pathToFileURL(join(REPO, "tests", "browser", "node_modules", "playwright-core", "index.mjs"));
  const { chromium } = await import(playwright.href);
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const deadline = setTimeout(() => {
    console.error("the office pages test did not finish within 100 s");
    browser.close().finally(() => process.exit(1));
  }, 100_000);
  const problems = [];
  const watch = (page, name) => {
    page.on("console", (m) => m.type() === "error" && problems.push(`${name}: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`${name}: ${e.message}`));
    // Name the failing request: the console says only "Failed to load resource".
    page.on("response", (r) => r.status() >= 400 && problems.push(`${name}: HTTP ${r.status()} for ${r.url().replace(/token=[^&]*/, "token=…")}`));
  };
  let current = null;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "vi-VN" });

    // --- finance -------------------------------------------------------------------------------
    const finance = await context.newPage();
    current = finance;
    watch(finance, "finance");
    await finance.goto(`${config.base}/finance?token=${config.finance}`);
    await finance.waitForSelector("body[data-loaded='true']", { timeout: 20_000 });
    check(!finance.url().includes("token="), "the token leaves the address bar");
    await finance.fill("#date", config.date);
    await finance.dispatchEvent("#date", "change");
    await finance.waitForFunction(() => !document.querySelector("#exceptions td.empty") && document.querySelectorAll("#exceptions tr").length > 0, null, { timeout: 20_000 });
    await finance.waitForSelector("#live-indicator[data-state='live']", { timeout: 20_000 });
    step("finance page loaded, live");
    const exceptions = await finance.locator("#exceptions tr").count();
    // Assign the unmatched credit to a case from the page.
    const row = finance.locator(`tr[data-credit='${config.credit}']`);
    await row.locator("input").first().fill(config.assignCase);
    await row.getByRole("button", { name: "Gán cho hồ sơ" }).click();
    await finance.waitForSelector(`tr[data-credit='${config.credit}']`, { state: "detached", timeout: 20_000 });
    const assigned = await graphql(config.finance, "query($c: String!) { case(code: $c) { status } }", { c: config.assignCase });
    check(assigned.case.status === "PAID" || assigned.case.status === "OVERPAID", `the assigned case is paid: ${assigned.case.status}`);
    step("credit assigned from the page");
    // A credit sent by mistake: marked for refund, then its refund recorded, both from the page.
    const mistaken = finance.locator(`tr[data-credit='${config.refundCredit}']`);
    await mistaken.getByLabel("Lý do hoàn trả").fill("Chuyển nhầm tài khoản");
    await mistaken.getByRole("button", { name: "Đánh dấu hoàn trả" }).click();
    const owed = finance.locator(`tr[data-refund='${config.refundCredit}']`);
    await owed.waitFor({ timeout: 20_000 });
    await owed.getByLabel("Số lệnh chuyển tiền hoàn trả").fill("FT26HOANTRA01");
    await owed.getByRole("button", { name: "Ghi nhận đã hoàn trả" }).click();
    await finance.waitForSelector(`tr[data-refund='${config.refundCredit}']`, { state: "detached", timeout: 20_000 });
    step("mistaken credit marked for refund and its refund recorded from the page");
    // The first exception of the day resolved with a reason.
    const open = finance.locator("#exceptions tr", { has: finance.getByRole("button", { name: "Giải trình" }) }).first();
    const openId = await open.getAttribute("data-exception");
    await open.getByRole("textbox").fill("Ngân hàng xác nhận ghi có nhầm");
    await open.getByRole("button", { name: "Giải trình" }).click();
    await finance.waitForFunction(
      (id) => [...document.querySelectorAll("#exceptions tr")].some((r) => r.dataset.exception === id && r.textContent.includes("Đã giải trình: Ngân hàng xác nhận ghi có nhầm")),
      openId, { timeout: 20_000 });
    step("an exception resolved from the page");
    // A payment arrives through the API: the page follows it without a reload.
    await finance.evaluate(() => { window.__sameDocument = true; });
    await graphql(
      config.officer,
      "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { status } }",
      { input: { caseCode: config.liveCase, amount: config.liveAmount, channel: "VIETQR", reference: config.liveCase, idempotencyKey: `office-live-${config.liveCase}` } },
    );
    await finance.waitForFunction(() => document.getElementById("last-arrival").textContent.includes("Vừa có tiền về"), null, { timeout: 20_000 });
    check(await finance.evaluate(() => window.__sameDocument === true), "updated live, not reloaded");
    step("payment followed live");
    await finance.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 20_000 });
    await finance.screenshot({ path: join(config.screenshots, "finance.png"), fullPage: true });

    // --- oversight -----------------------------------------------------------------------------
    const oversight = await context.newPage();
    current = oversight;
    watch(oversight, "oversight");
    await oversight.goto(`${config.base}/oversight?token=${config.oversight}&root=${config.root}&month=${config.month}`);
    await oversight.waitForSelector("body[data-loaded='true']", { timeout: 20_000 });
    const leagueRows = await oversight.locator("#league tr").count();
    const verdicts = await oversight.locator("#league .verdict").allTextContents();
    check(verdicts.includes("Đạt") && verdicts.includes("Không đạt"), `both verdicts appear: ${[...new Set(verdicts)]}`);
    const filter = async (level) => {
      await oversight.selectOption("#level", level);
      await oversight.evaluate(() => { document.body.dataset.loaded = "false"; });
      await oversight.click("#filters button[type='submit']");
      await oversight.waitForSelector("body[data-loaded='true']", { timeout: 20_000 });
    };
    await filter("COMMUNE");
    const communeRows = await oversight.locator("#league tr").count();
    // The screenshot: the districts, their totals and their rate chart against the target line.
    await filter("DISTRICT");
    await oversight.waitForFunction(() => [...document.images].length > 0 && [...document.images].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 20_000 });
    await oversight.screenshot({ path: join(config.screenshots, "oversight.png"), fullPage: true });
    step("oversight page and its filter");

    // --- the printable announcement and the quarter ----------------------------------------------
    const announcement = await context.newPage();
    current = announcement;
    watch(announcement, "announcement");
    await announcement.setViewportSize({ width: 900, height: 1270 });
    const response = await announcement.goto(`${config.base}/reports/league/announcement?root=${config.root}&month=${config.month}&token=${config.oversight}`);
    check(response && response.status() === 200, `the announcement answered ${response?.status()}`);
    await announcement.screenshot({ path: join(config.screenshots, "announcement.png"), fullPage: false });
    const announcementText = await announcement.evaluate(() => document.body.innerText.replace(/\s+/g, " "));
    const charts = await announcement.locator("svg.chart").count();
    check(charts >= 2, `the announcement carries its charts (${charts})`);
    const printed = await pdfFacts(announcement, join(config.out, "announcement.pdf"));
    const quarter = await context.newPage();
    current = quarter;
    watch(quarter, "quarter");
    const [year, month] = config.month.split("-");
    const q = `${year}-Q${Math.floor((Number(month) - 1) / 3) + 1}`;
    await quarter.goto(`${config.base}/reports/league/announcement?root=${config.root}&quarter=${q}&token=${config.oversight}`);
    const quarterText = await quarter.evaluate(() => document.body.innerText.replace(/\s+/g, " "));
    step("announcement printed");

    // --- admin ---------------------------------------------------------------------------------
    const admin = await context.newPage();
    current = admin;
    watch(admin, "admin");
    await admin.goto(`${config.base}/admin?token=${config.admin}`);
    await admin.waitForSelector("body[data-loaded='true']", { timeout: 20_000 });
    const agencies = await admin.locator("#agencies tr").count();
    const targetsBefore = await admin.locator("#targets tr").count();
    await admin.selectOption("#target-level", "DISTRICT");
    await admin.fill("#target-cashless", "95");
    await admin.click("#target-form button[type='submit']");
    await admin.waitForFunction((n) => document.querySelectorAll("#targets tr").length === n + 1, targetsBefore, { timeout: 20_000 });
    await admin.click("button[data-projection='cashless']");
    await admin.waitForFunction(() => document.getElementById("progress-label-cashless").textContent.startsWith("xong"), null, { timeout: 30_000 });
    step("admin: target set, projection rebuilt live");
    await admin.screenshot({ path: join(config.screenshots, "admin.png"), fullPage: true });

    check(problems.length === 0, `console errors: ${problems.join("; ")}`);
    console.log(JSON.stringify({
      exceptions, resolved: openId, leagueRows, communeRows, agencies, announcementPages: printed.pages, mediaBox: printed.mediaBox,
      announcementText, quarterText, steps,
    }));
  } catch (error) {
    if (current) await current.screenshot({ path: join(config.out, "failure.png"), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
