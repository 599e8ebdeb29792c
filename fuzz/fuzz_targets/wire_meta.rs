//! `tiernet_core::wire::decode::<MetaMessage>` on arbitrary bytes (see `tiernet_fuzz::wire`).
#![no_main]

use tiernet_core::wire::proto::MetaMessage;

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::wire::seeds::<MetaMessage>),
    |data: &[u8]| tiernet_fuzz::wire::run::<MetaMessage>(data)
);
