//! `dispatch roster export --data-dir DIR`: the roster a data directory holds now (run-time
//! changes included, tokens as SHA-256 digests only), as a roster file a deployment can be
//! rebuilt from. It only reads, so it is safe while the service runs on that directory.

use crate::journal::{current_roster, DiskStorage};
use anyhow::{bail, Context};
use std::io::Write;
use std::path::PathBuf;

/// The subcommands of `dispatch roster`.
#[derive(Debug, clap::Subcommand)]
pub enum RosterCmd {
    /// Writes the data directory's current roster as JSON (to stdout, or `--out`).
    Export(ExportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The server's data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Write here (atomically: a temporary file renamed into place) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(cmd: &RosterCmd) -> anyhow::Result<()> {
    let RosterCmd::Export(args) = cmd;
    let Some(roster) = current_roster(&DiskStorage, &args.data_dir)
        .with_context(|| format!("reading {}", args.data_dir.display()))?
    else {
        bail!(
            "{} holds no snapshot: it was started before data directories were seeded, and \
             its roster is the roster file it was started with",
            args.data_dir.display()
        );
    };
    let mut json = serde_json::to_vec_pretty(&roster).context("encoding the roster")?;
    json.push(b'\n');
    match &args.out {
        None => std::io::stdout()
            .write_all(&json)
            .context("write to stdout")?,
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &json).with_context(|| format!("write {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
        }
    }
    eprintln!(
        "roster: {} grids, {} responders, {} elders, {} operators, {} devices",
        roster.grids.len(),
        roster.responders.len(),
        roster.elders.len(),
        roster.operators.len(),
        roster.devices.len()
    );
    Ok(())
}
