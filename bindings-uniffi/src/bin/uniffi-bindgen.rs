//! `uniffi-bindgen`: generates the Swift, Kotlin and Python bindings from
//! the built library (`generate --library <cdylib> --language <lang>`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
