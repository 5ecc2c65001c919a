#![no_main]

// calamine's XLS reader panics on some damaged compound files; the importer catches that
// (`statement::bank_sheet::read_workbook`, replayed by the corpus test from
// fuzz/regressions/statement_bank), but libFuzzer's panic hook aborts before any catch, so the
// fuzzer would stop at calamine's panic every run instead of looking for ours. It leaves the
// old XLS format (an OLE compound file) to the corpus test.
const OLE_SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if !data.starts_with(&OLE_SIGNATURE) {
        feeledger_fuzz_targets::statement_bank(data);
    }
});
