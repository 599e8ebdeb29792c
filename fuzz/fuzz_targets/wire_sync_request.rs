//! `tiernet_core::wire::decode::<SyncRequest>` on arbitrary bytes (see `tiernet_fuzz::wire`).
#![no_main]

use tiernet_core::wire::proto::SyncRequest;

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::wire::seeds::<SyncRequest>),
    |data: &[u8]| tiernet_fuzz::wire::run::<SyncRequest>(data)
);
