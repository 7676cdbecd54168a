//! `kizuna import`: STIX objects from files into a collection, validated exactly as a TAXII POST
//! would validate them. Invalid objects are reported with their location and never stored; the
//! valid ones are stored in batches, each batch one transaction.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kizuna_stix::{InputObject, ObjectMeta};
use kizuna_store::{AddOutcome, NewObject, Store};

use crate::config::Config;
use crate::hub;

/// Objects stored per transaction.
const BATCH: usize = 1000;
/// Inputs with at least this many objects get a progress bar.
const PROGRESS_THRESHOLD: usize = 5000;

/// Arguments of `kizuna import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import: a bundle, a single object, a JSON array or JSON lines.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Collection id or alias to import into.
    #[arg(long)]
    collection: String,
    /// API root (default: the only one holding the collection).
    #[arg(long)]
    api_root: Option<String>,
    /// Print nothing for valid objects, only problems and the summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Default)]
struct Tally {
    added: u64,
    duplicates: u64,
    invalid: u64,
    rejected: u64,
}

/// Runs `kizuna import`.
pub fn run(config: &Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let store = hub::open_initialised(config)?;
    let collection =
        hub::find_collection(store.as_ref(), args.api_root.as_deref(), &args.collection)?;
    let cref = collection.as_ref();
    let mut tally = Tally::default();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let objects = kizuna_stix::read_objects(&text)
            .with_context(|| format!("{}: not STIX input", path.display()))?;
        let bar = if objects.len() >= PROGRESS_THRESHOLD {
            let bar = ProgressBar::new(objects.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(path.display().to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut batch: Vec<NewObject> = Vec::with_capacity(BATCH);
        let mut batch_names: Vec<String> = Vec::with_capacity(BATCH);
        for object in objects {
            match check(&object) {
                Ok(new) => {
                    batch_names.push(format!("{}:{}", path.display(), object.location));
                    batch.push(new);
                }
                Err(problems) => {
                    tally.invalid += 1;
                    bar.suspend(|| {
                        eprintln!("INVALID {}: {}", path.display(), object.location);
                        for p in problems {
                            eprintln!("    {p}");
                        }
                    });
                }
            }
            if batch.len() == BATCH {
                store_batch(
                    store.as_ref(),
                    &cref,
                    &mut batch,
                    &mut batch_names,
                    &mut tally,
                    &bar,
                )?;
            }
            bar.inc(1);
        }
        store_batch(
            store.as_ref(),
            &cref,
            &mut batch,
            &mut batch_names,
            &mut tally,
            &bar,
        )?;
        bar.finish_and_clear();
        if !args.quiet {
            eprintln!("{}: done", path.display());
        }
    }
    eprintln!(
        "imported into {} ({}): {} added, {} already present, {} invalid, {} rejected",
        collection.id,
        collection.title,
        tally.added,
        tally.duplicates,
        tally.invalid,
        tally.rejected
    );
    Ok(if tally.invalid + tally.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check(object: &InputObject<'_>) -> Result<NewObject, Vec<kizuna_stix::Problem>> {
    let problems =
        kizuna_stix::validate_object_with(&object.value, &kizuna_pattern::check_indicator_pattern);
    if !problems.is_empty() {
        return Err(problems);
    }
    let meta = ObjectMeta::from_value(&object.value).map_err(|p| vec![p])?;
    Ok(NewObject {
        meta,
        json: object.raw.to_owned(),
    })
}

fn store_batch(
    store: &dyn Store,
    cref: &kizuna_store::CollectionRef,
    batch: &mut Vec<NewObject>,
    names: &mut Vec<String>,
    tally: &mut Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let report = store.add_objects(cref, std::mem::take(batch))?;
    for (outcome, name) in report.outcomes.iter().zip(names.drain(..)) {
        match outcome {
            AddOutcome::Added => tally.added += 1,
            AddOutcome::Duplicate => tally.duplicates += 1,
            AddOutcome::Rejected(why) => {
                tally.rejected += 1;
                bar.suspend(|| eprintln!("REJECTED {name}: {why}"));
            }
        }
    }
    Ok(())
}
