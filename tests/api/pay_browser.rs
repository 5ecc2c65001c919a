//! The citizen's side in a real headless Chromium at a phone's size (tests/browser/pay.mjs): the
//! officer prints the case slip, its QR (decoded here from the slip's pixels) leads to the public
//! payment page, a signed SePay notification pays, and the page turns to paid and links the
//! receipt with the agency's MST and the year's number.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use feeledger_infrastructure::bank_feed::Secret;
use feeledger_infrastructure::settings::ProviderSecrets;
use feeledger_tests::{TestDatabase, spawn_app_with};
use serde_json::{Value, json};

use super::browser::{CHROMIUM, PATIENCE, decode_qr, missing_prerequisites, repo_root};

const SEPAY_HMAC: &str = "sepay-browser-hmac-secret-2026";

#[tokio::test]
async fn a_citizen_scans_the_slip_pays_from_a_phone_and_gets_the_receipt() {
    let root = repo_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the browser test cannot run in CI without: {what}");
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED the pay-page browser test: missing {what} ***\n");
        return;
    }
    // The slip's QR carries the configured public base URL: here, this test's own address.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(TestDatabase::sqlite(), |s| {
        s.listen = format!("127.0.0.1:{port}");
        s.public_base_url = Some(base.clone());
        s.providers =
            ProviderSecrets { sepay_hmac_secret: Some(Secret::new(SEPAY_HMAC)), ..ProviderSecrets::default() };
    })
    .await;
    // The demo agency takes payments on the public page and issues a receipt per payment.
    let tokens = feeledger_api::demo::load(&app.state).await.unwrap();
    let today = feeledger_domain::vietnam_time::date_of(app.state.clock.now());
    let case = format!("H34.22.6-{}-0031", today.format("%y%m%d"));
    app.graphql_ok(
        &tokens.officer,
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
        json!({ "input": { "caseCode": case, "agencyCode": "H34.22.6", "procedureName": "Chứng thực bản sao từ bản chính",
                           "procedureCode": "2.000815.000.00.00.H34",
                           "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
                           "lines": [{ "feeCode": "P-SAOY-2TRANG", "quantity": 1 }, { "feeCode": "P-SAOY-TRANGTHEM", "quantity": 1 }] } }),
    )
    .await;
    // Receipts issued earlier this year take the first numbers: this one must follow them.
    let earlier = app
        .graphql_ok(&tokens.finance, "query { agency(code: \"H34.22.6\") { taxCode receiptNumberWidth } }", json!({}))
        .await;
    let tax_code = earlier["agency"]["taxCode"].as_str().unwrap().to_owned();

    let out = std::env::temp_dir().join(format!("feeledger-pay-{}", uuid::Uuid::new_v4()));
    let screenshots = if std::env::var_os("FEELEDGER_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        out.join("screenshots")
    };
    let mut node = tokio::process::Command::new("node");
    node.arg(root.join("tests/browser/pay.mjs"))
        .current_dir(&root)
        .env("FEELEDGER_BASE_URL", &app.address)
        .env("FEELEDGER_OFFICER_TOKEN", &tokens.officer)
        .env("FEELEDGER_CASE_CODE", &case)
        .env("FEELEDGER_SEPAY_HMAC_SECRET", SEPAY_HMAC)
        .env("FEELEDGER_OUT_DIR", &out)
        .env("FEELEDGER_SCREENSHOT_DIR", &screenshots)
        .env("FEELEDGER_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, node.output()).await.expect("the pay-page test hung").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the pay-page browser test failed; files in {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap();

    // The slip's QR, read back from its pixels, is the page's address at the public base URL;
    // it is the same text the slip states in its data attribute.
    let expected = format!("{base}/pay/{case}");
    assert_eq!(decode_qr(Path::new(report["slipPng"].as_str().unwrap())), expected);
    assert_eq!(report["slipPayload"], expected.as_str());
    // The page's QR, read back from the phone's screen, is the case's VietQR for what was left.
    let paid = app
        .graphql_ok(
            &tokens.officer,
            "query($c: String!) { case(code: $c) { status payments { amount channel provider } \
             receipts { number printedNumber taxCode procedureCode amount } events { type data } } }",
            json!({ "c": case }),
        )
        .await;
    let issued_qr = paid["case"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "QrIssued")
        .map(|e| e["data"]["payload"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(decode_qr(Path::new(report["qrPng"].as_str().unwrap())), issued_qr);
    assert_eq!(report["qrPayload"], issued_qr.as_str());
    assert_eq!(paid["case"]["status"], "PAID");
    assert_eq!(paid["case"]["payments"][0]["provider"], "sepay");

    // The receipt: the agency's MST and this year's number, as the case records them.
    let receipt = paid["case"]["receipts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(receipt["taxCode"], tax_code.as_str());
    assert_eq!(receipt["procedureCode"], "2.000815.000.00.00.H34");
    let text = report["receiptText"].as_str().unwrap();
    assert!(text.contains(&format!("Mã số thuế: {tax_code}")), "{text}");
    assert!(text.contains(receipt["printedNumber"].as_str().unwrap()), "{text}");
    assert!(text.contains(&format!("AA-{:02}E", chrono::Datelike::year(&today) % 100)), "the year's serial: {text}");
    assert!(text.contains("2.000815.000.00.00.H34"));
    for name in ["slip.png", "pay.png", "pay-paid.png"] {
        let size = std::fs::metadata(screenshots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot {name} was written ({size} bytes)");
    }
    let _ = std::fs::remove_dir_all(&out);
}
