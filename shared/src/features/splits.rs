//! Other splits of a store's samples (`train-head resplit`, `--split-file`): a CSV `key,split`
//! that replaces the split of the sample table for every head and sweep that is given it (the
//! resolved config's top-level `split_file` key, so `eval` and sweeps of the run use it too).
//!
//! The shipped split of the Intel dataset puts most recording sessions (the manifest's
//! `DIRECTORY`) on both sides (TRAIN and VAL/TEST): welds of one session share plate, torch and
//! lighting, so a test score measures partly recognition of the session. [`by_session`] keeps
//! every session on one side:
//! - unsupervised (default): sessions holding only good welds are shuffled (seeded) and dealt to
//!   TRAIN / VAL / TEST by `fractions`; sessions holding a defect are dealt to VAL / TEST in
//!   turn (sorted by their most frequent class first, so both sides see every defect class);
//! - `supervised`: every session is dealt to TRAIN / VAL / TEST by `fractions` within groups of
//!   the same most frequent class, so TRAIN holds labelled defects (for supervised heads). A class
//!   held by fewer than three sessions cannot reach all three sides; such sessions are pooled
//!   (shuffled) into one group dealt the same way, so VAL and TEST still get defects, of classes
//!   TRAIN may lack (in a small store, e.g. the demo's one session per defect class).
use crate::schema::{SampleRow, Split};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Reads a split file: `key,split` rows (header `key,split`), every key once.
pub fn read_split_file(path: &Path) -> Result<HashMap<String, Split>> {
    let bad = |m: String| Error::Msg(format!("split file {}: {m}", path.display()));
    let mut rd = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let header = rd.headers().map_err(|e| bad(e.to_string()))?.clone();
    if header.iter().collect::<Vec<_>>() != ["key", "split"] {
        return Err(bad(format!(
            "header is {:?}; expected `key,split` (write one with `train-head resplit`)",
            header.iter().collect::<Vec<_>>()
        )));
    }
    let mut out = HashMap::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let split: Split = rec[1]
            .parse()
            .map_err(|e| bad(format!("line {}: {e}", i + 2)))?;
        if split == Split::Unlabelled {
            return Err(bad(format!(
                "line {}: a split file assigns labelled splits",
                i + 2
            )));
        }
        if out.insert(rec[0].to_string(), split).is_some() {
            return Err(bad(format!(
                "line {}: key `{}` appears twice",
                i + 2,
                &rec[0]
            )));
        }
    }
    Ok(out)
}

/// Writes `key,split` rows in the order given.
pub fn write_split_file(path: &Path, rows: &[(String, Split)]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| Error::io(path, e.into()))?;
    let werr = |e: csv::Error| Error::Msg(format!("{}: {e}", path.display()));
    w.write_record(["key", "split"]).map_err(werr)?;
    for (k, s) in rows {
        w.write_record([k.as_str(), s.as_str()]).map_err(werr)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Applies a split file to the sample table: every labelled sample must be listed, and every
/// listed key must be a sample of the store (an error names the first offender).
pub fn apply(table: &mut [SampleRow], splits: &HashMap<String, Split>, file: &Path) -> Result<()> {
    let mut seen = 0usize;
    for row in table.iter_mut() {
        if row.split == Split::Unlabelled {
            continue;
        }
        match splits.get(&row.key) {
            Some(&s) => {
                row.split = s;
                seen += 1;
            }
            None => {
                return Err(Error::Msg(format!(
                    "split file {} has no row for sample `{}` of the store (was it written for \
                     another store?)",
                    file.display(),
                    row.key
                )))
            }
        }
    }
    if seen != splits.len() {
        let keys: BTreeSet<&str> = table.iter().map(|r| r.key.as_str()).collect();
        let extra = splits
            .keys()
            .find(|k| !keys.contains(k.as_str()))
            .map_or(String::new(), |k| k.clone());
        return Err(Error::Msg(format!(
            "split file {} lists {} keys the store does not hold (first: `{extra}`)",
            file.display(),
            splits.len() - seen
        )));
    }
    Ok(())
}

/// Sessions of the labelled samples (a sample without a session is its own session).
fn sessions(table: &[SampleRow]) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in table.iter().enumerate() {
        if r.split == Split::Unlabelled {
            continue;
        }
        let s = r
            .session
            .clone()
            .unwrap_or_else(|| format!("sample:{}", r.key));
        m.entry(s).or_default().push(i);
    }
    m
}

/// (sessions whose samples fall in more than one split, sessions): how far a split mixes them.
pub fn sessions_across(table: &[SampleRow]) -> (usize, usize) {
    let m = sessions(table);
    let across = m
        .values()
        .filter(|rows| {
            let s: BTreeSet<Split> = rows.iter().map(|&i| table[i].split).collect();
            s.len() > 1
        })
        .count();
    (across, m.len())
}

/// The most frequent class of a session (lowest code on ties).
fn main_class(table: &[SampleRow], rows: &[usize]) -> u8 {
    let mut n: BTreeMap<u8, usize> = BTreeMap::new();
    for &i in rows {
        *n.entry(table[i].class_code.unwrap_or(0)).or_default() += 1;
    }
    let best = n.values().copied().max().unwrap_or(0);
    n.into_iter()
        .find(|&(_, c)| c == best)
        .map_or(0, |(k, _)| k)
}

/// Deals `sessions` (already shuffled) to TRAIN / VAL / TEST by `fractions`, rounding so each
/// split gets at least one session where there are three or more.
fn deal(sessions: &[String], fractions: [f64; 3]) -> Vec<(String, Split)> {
    let n = sessions.len();
    let total: f64 = fractions.iter().sum();
    let mut n_train = ((fractions[0] / total) * n as f64).round() as usize;
    let mut n_val = ((fractions[1] / total) * n as f64).round() as usize;
    if n >= 3 {
        n_train = n_train.clamp(1, n - 2);
        n_val = n_val.clamp(1, n - n_train - 1);
    }
    n_val = n_val.min(n - n_train.min(n));
    sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let split = if i < n_train {
                Split::Train
            } else if i < n_train + n_val {
                Split::Val
            } else {
                Split::Test
            };
            (s.clone(), split)
        })
        .collect()
}

/// A split that keeps every session on one side (see the module docs); rows in store order.
pub fn by_session(
    table: &[SampleRow],
    supervised: bool,
    fractions: [f64; 3],
    seed: u64,
) -> Result<Vec<(String, Split)>> {
    let m = sessions(table);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut assign: HashMap<String, Split> = HashMap::new();
    // group sessions by their most frequent class (BTreeMap: a fixed order before shuffling)
    let mut groups: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    let mut has_defect: BTreeSet<String> = BTreeSet::new();
    for (s, rows) in &m {
        if rows.iter().any(|&i| table[i].class_code.unwrap_or(0) != 0) {
            has_defect.insert(s.clone());
        }
        groups
            .entry(main_class(table, rows))
            .or_default()
            .push(s.clone());
    }
    if supervised {
        let mut pooled: Vec<String> = Vec::new();
        for g in groups.values_mut() {
            g.shuffle(&mut rng);
            if g.len() >= 3 {
                assign.extend(deal(g, fractions));
            } else {
                pooled.append(g);
            }
        }
        pooled.shuffle(&mut rng);
        assign.extend(deal(&pooled, fractions));
    } else {
        let mut good: Vec<String> = m
            .keys()
            .filter(|s| !has_defect.contains(*s))
            .cloned()
            .collect();
        if good.len() < 3 {
            return Err(Error::Msg(format!(
                "resplit: {} sessions hold only good welds; TRAIN, VAL and TEST need at least \
                 one each",
                good.len()
            )));
        }
        good.shuffle(&mut rng);
        assign.extend(deal(&good, fractions));
        let mut k = 0usize;
        for g in groups.values_mut() {
            g.retain(|s| has_defect.contains(s));
            g.shuffle(&mut rng);
            for s in g.iter() {
                assign.insert(
                    s.clone(),
                    if k.is_multiple_of(2) {
                        Split::Val
                    } else {
                        Split::Test
                    },
                );
                k += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (s, rows) in &m {
        for &i in rows {
            out.push((i, table[i].key.clone(), assign[s]));
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    Ok(out.into_iter().map(|(_, k, s)| (k, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, class: u8, session: &str) -> SampleRow {
        SampleRow {
            key: key.into(),
            id: key.into(),
            class_code: Some(class),
            class_name: Some(format!("c{class}")),
            split: Split::Train,
            session: Some(session.into()),
        }
    }

    /// Seven defect classes of one session each (the demo's store): the supervised split pools
    /// them, so VAL and TEST get defects and no session lands on two sides.
    #[test]
    fn supervised_pools_classes_of_few_sessions() {
        let mut table = Vec::new();
        for s in 0..10 {
            for j in 0..4 {
                table.push(row(&format!("g{s}_{j}"), 0, &format!("good{s}")));
            }
        }
        for c in [2u8, 3, 5, 6, 7, 9, 11] {
            for j in 0..4 {
                table.push(row(&format!("d{c}_{j}"), c, &format!("bad{c}")));
            }
        }
        let rows = by_session(&table, true, [0.6, 0.2, 0.2], 0).unwrap();
        let new: HashMap<&str, Split> = rows.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        for r in table.iter_mut() {
            r.split = new[r.key.as_str()];
        }
        assert_eq!(sessions_across(&table).0, 0);
        for s in [Split::Train, Split::Val, Split::Test] {
            let bad = table
                .iter()
                .filter(|r| r.split == s && r.class_code != Some(0))
                .count();
            let good = table
                .iter()
                .filter(|r| r.split == s && r.class_code == Some(0))
                .count();
            assert!(bad > 0 && good > 0, "{s}: {good} good, {bad} defective");
        }
    }
}
