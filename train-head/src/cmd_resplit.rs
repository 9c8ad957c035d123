//! `train-head resplit`: a split of a store's samples that keeps every recording session on one
//! side (`--by-session`), or a supervised one with defect classes in TRAIN (`--supervised`),
//! written as a `key,split` CSV for `--split-file`. Prints how many sessions the store's own
//! split puts on more than one side, and the new split's sizes.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use weld_cache::features::splits::{by_session, sessions_across, write_split_file};
use weld_cache::schema::{sample_table, Split};
use weld_cache::store::StoreReader;

#[derive(Args)]
pub struct ResplitArgs {
    /// Feature store whose sample table (keys, classes, sessions) is split
    #[arg(long)]
    store: PathBuf,
    /// Keep every session (the manifest's DIRECTORY) in one split
    #[arg(long)]
    by_session: bool,
    /// Deal every session, defective ones included, to TRAIN/VAL/TEST within groups of the same
    /// main class (TRAIN then holds labelled defects: for supervised heads only)
    #[arg(long)]
    supervised: bool,
    /// Fractions of the sessions dealt to TRAIN, VAL and TEST (unsupervised: of the all-good
    /// sessions; defective sessions alternate between VAL and TEST)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.6,0.2,0.2",
        value_name = "T,V,T"
    )]
    fractions: Vec<f64>,
    /// Seed of the session shuffle
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output CSV (`key,split`)
    #[arg(long)]
    out: PathBuf,
}

fn sizes(rows: &[(Split, u8)]) -> String {
    let mut n: BTreeMap<Split, (usize, usize)> = BTreeMap::new();
    for &(s, c) in rows {
        let e = n.entry(s).or_default();
        e.0 += 1;
        e.1 += usize::from(c != 0);
    }
    n.iter()
        .map(|(s, (all, bad))| format!("{s} {all} ({bad} defective)"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(a: ResplitArgs) -> Result<()> {
    if !a.by_session {
        bail!("give --by-session (the only split strategy so far)");
    }
    if a.fractions.len() != 3 || a.fractions.iter().any(|f| *f < 0.0) {
        bail!("--fractions needs three non-negative numbers, e.g. 0.6,0.2,0.2");
    }
    let reader = StoreReader::open(&a.store)?;
    let mut table = sample_table(&reader)?;
    let (across, total) = sessions_across(&table);
    println!(
        "store split: {across} of {total} sessions have samples in more than one split ({})",
        sizes(
            &table
                .iter()
                .filter(|r| r.split != Split::Unlabelled)
                .map(|r| (r.split, r.class_code.unwrap_or(0)))
                .collect::<Vec<_>>()
        )
    );
    let f = [a.fractions[0], a.fractions[1], a.fractions[2]];
    let rows = by_session(&table, a.supervised, f, a.seed)?;
    let new: BTreeMap<&str, Split> = rows.iter().map(|(k, s)| (k.as_str(), *s)).collect();
    for r in table.iter_mut() {
        if let Some(&s) = new.get(r.key.as_str()) {
            r.split = s;
        }
    }
    let (across, total) = sessions_across(&table);
    if across != 0 {
        bail!("internal: the new split still puts {across} sessions on both sides");
    }
    let sized: Vec<(Split, u8)> = table
        .iter()
        .filter(|r| r.split != Split::Unlabelled)
        .map(|r| (r.split, r.class_code.unwrap_or(0)))
        .collect();
    write_split_file(&a.out, &rows).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{} split: 0 of {total} sessions on more than one side ({})",
        if a.supervised {
            "supervised"
        } else {
            "by-session"
        },
        sizes(&sized)
    );
    if a.supervised {
        let in_train: std::collections::BTreeSet<u8> = sized
            .iter()
            .filter(|(s, _)| *s == Split::Train)
            .map(|&(_, c)| c)
            .collect();
        let unseen: std::collections::BTreeSet<u8> = sized
            .iter()
            .filter(|&&(s, c)| s != Split::Train && !in_train.contains(&c))
            .map(|&(_, c)| c)
            .collect();
        if !unseen.is_empty() {
            println!(
                "note: defect classes {unseen:?} are in VAL/TEST but not in TRAIN (each is held \
                 by fewer than three sessions); a k-NN classifier cannot name them"
            );
        }
    }
    println!(
        "written to {}; use it with --split-file {}",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}
