//! Prints every Ironlog CRD as YAML: the one command that produces all committed CRD files.
//!
//! - `crdgen` writes all CRDs to stdout as one multi-document stream.
//! - `crdgen --out DIR` writes one file per CRD into DIR (repeatable).
//! - `crdgen --bundle FILE` writes the multi-document stream into FILE (repeatable).
//!
//! Regenerate everything from the repository root with
//! `cargo run -p ironlog-operator --bin crdgen -- --out crds --out charts/ironlog-operator/crds --bundle manifests/00-crds.yaml`;
//! the unit test `crd::tests::crds_match_committed_yaml` fails when any of them drifts.

use anyhow::Context;
use ironlog_operator::crd::{all_crds, bundle_yaml, crd_yaml};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        print!("{}", bundle_yaml()?);
        return Ok(());
    }
    for pair in args.chunks(2) {
        match pair {
            [flag, dir] if flag == "--out" => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
                for (file, crd) in all_crds() {
                    let path = std::path::Path::new(dir).join(file);
                    std::fs::write(&path, crd_yaml(&crd)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            [flag, file] if flag == "--bundle" => {
                std::fs::write(file, bundle_yaml()?).with_context(|| format!("writing {file}"))?;
            }
            _ => anyhow::bail!("usage: crdgen [--out DIR]... [--bundle FILE]..."),
        }
    }
    Ok(())
}
