//! Both counter screens in a real headless Chromium (tests/browser/screens.mjs, driven by
//! playwright-core): the officer assesses a case and creates the QR, payments arrive through the
//! API, and the citizen's screen follows them live over WebSocket, without a reload.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use feeledger_tests::{TestDatabase, spawn_app};
use serde_json::{Value, json};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// A bound on a broken run (the script gives up by itself after 100 s), not a performance target.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repository").to_path_buf()
}

/// What the browser test needs and this machine lacks.
pub(crate) fn missing_prerequisites(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
    }
    if !root.join("tests/browser/node_modules/playwright-core/index.mjs").exists() {
        missing.push("tests/browser/node_modules/playwright-core (npm ci --prefix tests/browser)".into());
    }
    let node = std::process::Command::new("node").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !node.is_ok_and(|status| status.success()) {
        missing.push("node (Node.js 20 or later)".into());
    }
    missing
}

/// The screenshot as greyscale pixels, whatever colour type the browser wrote.
fn greyscale(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let samples = info.color_type.samples();
    let grey = buffer[..info.buffer_size()]
        .chunks_exact(samples)
        .map(|pixel| match pixel {
            [r, g, b, ..] if samples >= 3 => {
                let luma = (u32::from(*r) * 299 + u32::from(*g) * 587 + u32::from(*b) * 114) / 1000;
                u8::try_from(luma).unwrap_or(u8::MAX)
            }
            [y, ..] => *y,
            [] => u8::MAX,
        })
        .collect();
    (info.width as usize, info.height as usize, grey)
}

pub(crate) fn decode_qr(path: &Path) -> String {
    let (w, h, pixels) = greyscale(path);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the screenshot {}", path.display());
    let (_, decoded) = grids[0].decode().unwrap();
    decoded
}

#[tokio::test]
async fn both_screens_follow_a_qr_payment_live_in_a_real_browser() {
    let root = repo_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the browser test cannot run in CI without: {what}");
        // Printed on the real stderr: the harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED both_screens_follow_a_qr_payment_live_in_a_real_browser: missing {what} ***\n"
        );
        return;
    }

    let app = spawn_app(TestDatabase::sqlite()).await;
    let tokens = feeledger_api::demo::load(&app.state).await.unwrap();
    let out = std::env::temp_dir().join(format!("feeledger-browser-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&out).unwrap();
    // The README's screenshots are refreshed on request only, so a test run leaves the tree clean.
    let screenshots = if std::env::var_os("FEELEDGER_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        out.join("screenshots")
    };
    std::fs::create_dir_all(&screenshots).unwrap();

    let mut node = tokio::process::Command::new("node");
    node.arg(root.join("tests/browser/screens.mjs"))
        .current_dir(&root)
        .env("FEELEDGER_BASE_URL", &app.address)
        .env("FEELEDGER_OFFICER_TOKEN", &tokens.officer)
        .env("FEELEDGER_DISPLAY_TOKEN", &tokens.display)
        .env("FEELEDGER_OUT_DIR", &out)
        .env("FEELEDGER_SCREENSHOT_DIR", &screenshots)
        .env("FEELEDGER_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(PATIENCE, node.output()).await;
    let output = run.unwrap_or_else(|_| panic!("the browser test took more than {PATIENCE:?}")).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        out.display()
    );

    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON report on stdout:\n{stdout}"));
    let payload = report["payload"].as_str().unwrap();
    let case_code = report["caseCode"].as_str().unwrap();

    // The QR the citizen's screen showed, read back from its pixels, is the one the API issued.
    let decoded = decode_qr(Path::new(report["qrPng"].as_str().unwrap()));
    assert_eq!(decoded, payload, "the image on the citizen's screen carries the payload byte for byte");
    let case = app
        .graphql_ok(
            &tokens.officer,
            "query($code: String!) { case(code: $code) { status total paid outstanding qr { payload amount } \
             payments { amount channel } } }",
            json!({ "code": case_code }),
        )
        .await;
    let case = &case["case"];
    assert_eq!(case["qr"]["payload"], payload, "{case:#}");
    assert_eq!(case["qr"]["amount"], "3000");
    assert_eq!(case["status"], "PAID");
    assert_eq!((&case["total"], &case["paid"], &case["outstanding"]), (&json!("3000"), &json!("3000"), &json!("0")));
    let amounts: Vec<&str> =
        case["payments"].as_array().unwrap().iter().map(|p| p["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["2000", "1000"]);

    for name in ["counter.png", "display.png"] {
        let size = std::fs::metadata(screenshots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot {name} was written ({size} bytes)");
    }
    let steps = report["steps"].as_array().map_or(0, Vec::len);
    let _ = writeln!(std::io::stderr(), "browser test: {steps} steps in {} ms", report["totalMs"]);
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test]
async fn the_remittance_voucher_prints_on_one_a4_page_in_a_real_browser() {
    let root = repo_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the browser test cannot run in CI without: {what}");
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED the voucher browser test: missing {what} ***\n");
        return;
    }
    let app = spawn_app(TestDatabase::sqlite()).await;
    let tokens = feeledger_api::demo::load(&app.state).await.unwrap();
    // Today's sample case (a certified copy, phí) and a civil-status extract (lệ phí), both paid.
    let today = feeledger_domain::vietnam_time::date_of(app.state.clock.now());
    let sample = format!("H34.22.6-{}-0001", today.format("%y%m%d"));
    let extract = format!("H34.22.6-{}-0007", today.format("%y%m%d"));
    app.graphql_ok(
        &tokens.officer,
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
        json!({ "input": { "caseCode": extract, "agencyCode": "H34.22.6", "procedureName": "Cấp bản sao trích lục hộ tịch",
                           "payer": { "name": "NGUYỄN VĂN AN" }, "lines": [{ "feeCode": "LP-TRICHLUC", "quantity": 2 }] } }),
    )
    .await;
    for (case, amount) in [(&sample, "3000"), (&extract, "16000")] {
        app.graphql_ok(
            &tokens.officer,
            "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { status } }",
            json!({ "input": { "caseCode": case, "amount": amount, "channel": "POS", "reference": case, "idempotencyKey": format!("voucher-{case}") } }),
        )
        .await;
    }
    app.state.runner.caught_up("treasury", Duration::from_secs(10)).await.unwrap();
    let owed = app
        .graphql_ok(
            &tokens.finance,
            "query($d: Date!) { treasuryReport(agencyCode: \"H34.22.6\", from: $d, to: $d) { outstanding } }",
            json!({ "d": today.to_string() }),
        )
        .await;
    let amount = owed["treasuryReport"]["outstanding"].as_str().unwrap().to_owned();
    assert_eq!(amount, "17500", "the lệ phí in full and half of the phí");
    let remitted = app
        .graphql_ok(
            &tokens.finance,
            "mutation($input: RemitInput!) { remitToTreasury(input: $input) { voucherUrl } }",
            json!({ "input": { "agencyCode": "H34.22.6", "upTo": today.to_string(), "voucherNumber": "GNT-0001/KBNN",
                               "amount": amount } }),
        )
        .await;
    let url = format!(
        "{}{}?token={}",
        app.address,
        remitted["remitToTreasury"]["voucherUrl"].as_str().unwrap(),
        tokens.finance
    );

    let out = std::env::temp_dir().join(format!("feeledger-voucher-{}", uuid::Uuid::new_v4()));
    let screenshots = if std::env::var_os("FEELEDGER_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        out.join("screenshots")
    };
    let mut node = tokio::process::Command::new("node");
    node.arg(root.join("tests/browser/voucher.mjs"))
        .current_dir(&root)
        .env("FEELEDGER_VOUCHER_URL", &url)
        .env("FEELEDGER_OUT_DIR", &out)
        .env("FEELEDGER_SCREENSHOT_DIR", &screenshots)
        .env("FEELEDGER_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, node.output()).await.expect("the voucher test hung").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap();
    let printed = report["printedText"].as_str().unwrap();
    for expected in [
        "GIẤY NỘP TIỀN VÀO NGÂN SÁCH NHÀ NƯỚC",
        "C1-02/NS",
        "GNT-0001/KBNN",
        "0108888888",
        "Số 1 phố Trần Hưng Đạo",
        "3511.0.1012345",
        "2716",
        "2771",
        "16.000",
        "1.500",
        "17.500",
        "Mười bảy nghìn năm trăm đồng",
    ] {
        assert!(printed.contains(expected), "the printed voucher shows {expected:?}: {printed}");
    }
    assert_eq!(report["pages"], 1, "one page: {report}");
    let media_box: Vec<f64> =
        report["mediaBox"].as_str().unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!((media_box[2] - 595.0).abs() < 2.0 && (media_box[3] - 842.0).abs() < 2.0, "A4 in points: {media_box:?}");
    assert!(std::fs::read(report["pdf"].as_str().unwrap()).unwrap().starts_with(b"%PDF"));
    let _ = std::fs::remove_dir_all(&out);
}

/// The office pages (/finance, /oversight, /admin) and the printable league announcement in a
/// real headless Chromium (tests/browser/office.mjs): a month of counter traffic with its bank
/// statement for the finance page, a generated province of 57 agencies for the oversight pages.
#[tokio::test]
async fn the_finance_oversight_and_admin_pages_and_the_announcement_work_in_a_real_browser() {
    use feeledger_api::auth::Role;
    use feeledger_infrastructure::settings::{ProviderSecrets, Secret};
    use feeledger_tests::province::{self, ProvincePlan};
    use feeledger_tests::traffic::{self, Plan};

    let root = repo_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the browser test cannot run in CI without: {what}");
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED the office pages browser test: missing {what} ***\n");
        return;
    }
    const SEPAY_KEY: &str = "sepay-office-test-api-key";
    let app = feeledger_tests::spawn_app_with(TestDatabase::sqlite(), |s| {
        s.providers = ProviderSecrets { sepay_api_key: Some(Secret::new(SEPAY_KEY)), ..ProviderSecrets::default() }
    })
    .await;
    let plan = Plan::small();
    let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
    let agency = plan.agencies[0].clone();
    let finance = app.token(Role::Finance, Some(&agency), None);
    let (_, account, lines) = generated.statements.iter().find(|(a, _, _)| a.as_str() == agency).unwrap();
    app.graphql_ok(
        &finance,
        "mutation($input: StatementInput!) { importBankStatement(input: $input) { inserted } }",
        json!({ "input": { "format": "CSV", "content": traffic::statement_csv(account, lines) } }),
    )
    .await;
    // The day of the month with the most exceptions, for the page to show.
    let mut busiest = (0, String::new());
    for day in 1..=30 {
        let date = format!("2026-10-{day:02}");
        let data = app
            .graphql_ok(
                &finance,
                "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { exceptions { kind } } }",
                json!({ "a": agency, "d": date }),
            )
            .await;
        let count = data["dailyReconciliation"]["exceptions"].as_array().unwrap().len();
        if count > busiest.0 {
            busiest = (count, date);
        }
    }
    assert!(busiest.0 > 0, "the tampered statement leaves exceptions");
    let unpaid: Vec<String> = generated
        .cases
        .iter()
        .filter(|c| c.agency().as_str() == agency && !generated.paid_in_full.contains(c))
        .map(ToString::to_string)
        .collect();
    let total = |case: String| {
        let app = &app;
        let finance = finance.clone();
        async move {
            let data = app
                .graphql_ok(&finance, "query($c: String!) { case(code: $c) { outstanding } }", json!({ "c": case }))
                .await;
            data["case"]["outstanding"].as_str().unwrap().to_owned()
        }
    };
    let (assign_case, live_case) = (unpaid[0].clone(), unpaid[1].clone());
    let assign_amount: i64 = total(assign_case.clone()).await.parse().unwrap();
    let live_amount = total(live_case.clone()).await;
    let body = json!({
        "id": 77_001, "gateway": "VietinBank", "transactionDate": "2026-10-15 10:20:00",
        "accountNumber": account, "code": null, "content": "chuyen tien le phi", "transferType": "in",
        "transferAmount": assign_amount, "accumulated": 19_077_000, "subAccount": null, "referenceCode": "FT26288770011"
    });
    // A second credit nobody can place, to be refunded from the page.
    let mistaken = json!({
        "id": 77_002, "gateway": "VietinBank", "transactionDate": "2026-10-15 10:25:00",
        "accountNumber": account, "code": null, "content": "chuyen nham", "transferType": "in",
        "transferAmount": 123_000, "accumulated": 19_200_000, "subAccount": null, "referenceCode": "FT26288770022"
    });
    for body in [&body, &mistaken] {
        let response = app
            .client
            .post(format!("{}/webhooks/sepay", app.address))
            .header("Authorization", format!("Apikey {SEPAY_KEY}"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let _province = province::generate(&app.state.ledger, &ProvincePlan::standard()).await.unwrap();
    let admin = app.admin();
    for (level, from, cashless) in [
        ("DEPARTMENT", "2026-08", "80"),
        ("DISTRICT", "2026-08", "80"),
        ("COMMUNE", "2026-08", "70"),
        ("DEPARTMENT", "2026-10", "100"),
        ("DISTRICT", "2026-10", "100"),
        ("COMMUNE", "2026-10", "60"),
    ] {
        app.graphql_ok(
            &admin,
            "mutation($i: TargetInput!) { setTarget(input: $i) { level } }",
            json!({ "i": { "level": level, "effectiveFrom": from, "cashlessPercent": cashless, "onlinePercent": "30" } }),
        )
        .await;
    }
    let oversight = app.token(Role::Oversight, Some(province::ROOT), None);
    let officer = app.token(Role::Officer, Some(&agency), Some("quay-1"));

    let out = std::env::temp_dir().join(format!("feeledger-office-{}", uuid::Uuid::new_v4()));
    let screenshots = if std::env::var_os("FEELEDGER_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        out.join("screenshots")
    };
    let mut node = tokio::process::Command::new("node");
    node.arg(root.join("tests/browser/office.mjs"))
        .current_dir(&root)
        .env("FEELEDGER_BASE_URL", &app.address)
        .env("FEELEDGER_FINANCE_TOKEN", &finance)
        .env("FEELEDGER_OFFICER_TOKEN", &officer)
        .env("FEELEDGER_OVERSIGHT_TOKEN", &oversight)
        .env("FEELEDGER_ADMIN_TOKEN", &admin)
        .env("FEELEDGER_AGENCY", &agency)
        .env("FEELEDGER_DATE", &busiest.1)
        .env("FEELEDGER_CREDIT", "sepay:77001")
        .env("FEELEDGER_REFUND_CREDIT", "sepay:77002")
        .env("FEELEDGER_ASSIGN_CASE", &assign_case)
        .env("FEELEDGER_LIVE_CASE", &live_case)
        .env("FEELEDGER_LIVE_AMOUNT", &live_amount)
        .env("FEELEDGER_ROOT", province::ROOT)
        .env("FEELEDGER_MONTH", "2026-10")
        .env("FEELEDGER_OUT_DIR", &out)
        .env("FEELEDGER_SCREENSHOT_DIR", &screenshots)
        .env("FEELEDGER_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, node.output()).await.expect("the office pages test hung").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the office pages test failed; see {}\n{stdout}\n{}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap();
    assert_eq!(report["exceptions"].as_u64(), Some(busiest.0 as u64), "the day's exceptions are listed: {report}");
    // What the page did is recorded: the refund paid, the exception resolved with its reason.
    let refunded = app
        .graphql_ok(
            &finance,
            "query($a: String!) { creditsAwaitingRefund(agencyCode: $a) { id } }",
            json!({ "a": agency }),
        )
        .await;
    assert_eq!(refunded["creditsAwaitingRefund"], json!([]), "the refund recorded from the page closed it");
    let day = app
        .graphql_ok(
            &finance,
            "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { resolutions { statementLineId paymentId reason } } }",
            json!({ "a": agency, "d": busiest.1 }),
        )
        .await;
    let resolutions = day["dailyReconciliation"]["resolutions"].as_array().unwrap().clone();
    let resolved = report["resolved"].as_str().unwrap();
    assert!(
        resolutions.iter().any(|r| (r["statementLineId"] == resolved || r["paymentId"] == resolved)
            && r["reason"] == "Ngân hàng xác nhận ghi có nhầm"),
        "{resolutions:?}"
    );
    assert_eq!(report["leagueRows"], 57, "every agency of the province");
    assert_eq!(report["communeRows"], 45, "the communes only");
    assert!(report["agencies"].as_u64().unwrap() >= 59, "{report}");
    let text = report["announcementText"].as_str().unwrap();
    for expected in [
        "THÔNG BÁO KẾT QUẢ",
        "THÁNG 10/2026",
        "Các đơn vị đạt chỉ tiêu",
        "Các đơn vị không đạt chỉ tiêu",
        "UBND cấp xã",
        "Sở, ban, ngành",
    ] {
        assert!(text.contains(expected), "the announcement says {expected:?}: {text}");
    }
    assert!(report["quarterText"].as_str().unwrap().contains("QUÝ IV/2026"), "{report}");
    let media_box: Vec<f64> =
        report["mediaBox"].as_str().unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!((media_box[2] - 595.0).abs() < 2.0 && (media_box[3] - 842.0).abs() < 2.0, "A4 in points: {media_box:?}");
    for name in ["finance.png", "oversight.png", "admin.png", "announcement.png"] {
        let size = std::fs::metadata(screenshots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot {name} was written ({size} bytes)");
    }
    let _ = writeln!(std::io::stderr(), "office pages: {}", report["steps"]);
    let _ = std::fs::remove_dir_all(&out);
}
