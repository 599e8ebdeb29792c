//! The request-response length prefix decoder on arbitrary bytes (see `tiernet_fuzz::wire::frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::wire::frame_seeds),
    |data: &[u8]| tiernet_fuzz::wire::frame(data)
);
