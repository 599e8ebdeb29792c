//! `tiernet_core::wire::decode::<IdentityRecord>` on arbitrary bytes (see `tiernet_fuzz::wire`).
#![no_main]

use tiernet_core::wire::proto::IdentityRecord;

libfuzzer_sys::fuzz_target!(
    init: tiernet_fuzz::write_seeds_if_asked(tiernet_fuzz::wire::seeds::<IdentityRecord>),
    |data: &[u8]| tiernet_fuzz::wire::run::<IdentityRecord>(data)
);
