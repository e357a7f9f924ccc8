//! `outpost verify` and `outpost keygen`: a run checked against the agent's public key, and
//! the key pair that signs runs.

use std::path::PathBuf;

use outpost_core::{ExitCode, Failure};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The run: its folder (the extract step's output), or a delivered run's bucket URL
    /// (`s3://bucket/prefix/<connection>/<job-id>/<run-id>`, `az://…`, `gs://…`,
    /// `file:///…`), read back with the store flags below.
    run: String,
    /// The agent's manifest-signing public key (base64 of 32 bytes, as `outpost keygen`
    /// prints it).
    #[arg(long)]
    key: String,
    #[command(flatten)]
    store: crate::flags::StoreFlags,
    #[command(flatten)]
    trust: crate::flags::TrustFlags,
}

pub fn verify(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let key =
        outpost_core::signing::keys::parse_verifying_key("manifest-signing key", Some(&args.key))
            .map_err(|e| Failure::new(ExitCode::Usage, e))?
            .ok_or_else(|| Failure::new(ExitCode::Usage, "--key is empty"))?;
    let store = args.store.settings(&args.trust);
    let runtime = agent::context::runtime()?;
    let verified = runtime.block_on(agent::steps::verify(&args.run, &key, &store))?;
    println!("{}", verified.describe(&args.run, args.key.trim()));
    Ok(ExitCode::Success)
}

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// File for the private key (its seed, base64); created with mode 0600, never
    /// overwritten.
    #[arg(long)]
    out: PathBuf,
}

pub fn keygen(args: &KeygenArgs) -> Result<ExitCode, Failure> {
    println!("{}", control_plane::run::keygen(&args.out)?);
    Ok(ExitCode::Success)
}
