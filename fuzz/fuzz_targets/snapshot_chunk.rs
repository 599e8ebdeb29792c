//! See `tiernet_fuzz::snapshot` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::snapshot::seeds),
    |data: &[u8]| tiernet_fuzz::snapshot::run(data)
);
