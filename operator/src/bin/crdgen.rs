//! Prints every Ironlog CRD as YAML.
//!
//! `crdgen` writes all CRDs to stdout as one multi-document stream;
//! `crdgen --out DIR` writes one file per CRD into DIR (that is how `crds/` is produced).

use anyhow::Context;
use ironlog_operator::crd::{all_crds, crd_yaml};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            for (_, crd) in all_crds() {
                print!("---\n{}", crd_yaml(&crd)?);
            }
        }
        [flag, dir] if flag == "--out" => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
            for (file, crd) in all_crds() {
                let path = std::path::Path::new(dir).join(file);
                std::fs::write(&path, crd_yaml(&crd)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        _ => anyhow::bail!("usage: crdgen [--out DIR]"),
    }
    Ok(())
}
