//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed. The generated code lands in `OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/tiernet/v1/tiernet.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    prost_build::Config::new()
        // Wire types are plain data; Eq/Hash come for free where prost can derive them.
        // A submitted envelope is boxed so `SyncRequest` stays small (issue 19).
        .boxed(".tiernet.v1.SubmitProofRequest.envelope")
        .compile_fds(descriptors)?;
    Ok(())
}
