#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feeledger_fuzz_targets::statement_bank(data));
