//! See `tiernet_fuzz::stark` for the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::stark::seeds),
    |data: &[u8]| tiernet_fuzz::stark::run_decode(data)
);
