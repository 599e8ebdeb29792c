//! `tiernet_core::wire::decode::<BlocksMessage>` on arbitrary bytes (see `tiernet_fuzz::wire`).
#![no_main]

use tiernet_core::wire::proto::BlocksMessage;

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::wire::seeds::<BlocksMessage>),
    |data: &[u8]| tiernet_fuzz::wire::run::<BlocksMessage>(data)
);
