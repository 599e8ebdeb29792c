//! See `tiernet_fuzz::hello` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::hello::seeds),
    |data: &[u8]| tiernet_fuzz::hello::run(data)
);
