//! The stage engine: CPU workers decode and preprocess fixed batch groups into a bounded queue,
//! the calling thread runs the device forward, a writer thread stores chunks and marks samples
//! done. Memory stays bounded by `queue` groups whatever the dataset size.
//!
//! Byte-identical resumes: a batch group is a fixed set of sample indices, and a group with any
//! sample still to do is recomputed whole (the done samples are not rewritten), so every forward
//! sees exactly the batch an uninterrupted run sees.
use crate::data::SampleError;
use crate::store::{FeatureStore, SampleWrite, StoreDtype};
use crate::{Error, Result};
use crossbeam_channel::bounded;
use rayon::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One fault: a sample whose modality could not be extracted. Serialised in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fault {
    /// The stage that met the fault (video, audio, image, sensor).
    pub stage: String,
    pub sample: String,
    pub modality: String,
    pub file: String,
    pub error: String,
}

impl From<&SampleError> for Fault {
    fn from(e: &SampleError) -> Self {
        Fault {
            stage: String::new(),
            sample: e.sample.clone(),
            modality: e.modality.as_str().to_string(),
            file: e.file.display().to_string(),
            error: e.message.clone(),
        }
    }
}

/// What one stage did, for the report and the final summary.
#[derive(Debug, Clone, Serialize, Default)]
pub struct StageSummary {
    pub stage: String,
    /// Samples of this shard that had all arrays done before the run.
    pub already_done: usize,
    /// Samples written by this run.
    pub written: usize,
    /// Samples that faulted in this run.
    pub faults: usize,
    /// Wall time of the stage.
    pub seconds: f64,
    /// Decode + preprocess time summed over the workers (they overlap the device step).
    pub prepare_seconds: f64,
    /// Device step time (forwards, pooling, copies to host) on the calling thread.
    pub compute_seconds: f64,
    /// Time the calling thread waited for prepared groups (decode not keeping up).
    pub wait_seconds: f64,
    /// Writer thread time (encode, chunk writes, syncs, markers).
    pub write_seconds: f64,
    /// CPU time of the decode workers in decode + preprocess (their threads' CPU clocks summed:
    /// waiting excluded; a library's own helper threads would not be counted, so the binaries
    /// keep opencv single-threaded).
    pub prepare_cpu_seconds: f64,
    /// Samples the workers prepared (the denominator of the per-sample CPU cost).
    pub prepared: usize,
    /// Part of the device step spent uploading and preprocessing (`run.preprocess = "device"`;
    /// on CUDA the launch time, the kernels run asynchronously).
    pub device_prep_seconds: f64,
    /// CPU time of the whole process during the stage (every thread: decoders, device step and
    /// its OpenMP team, writer).
    pub process_cpu_seconds: f64,
}

/// CPU time consumed so far by the calling thread (`clock`: `CLOCK_THREAD_CPUTIME_ID`) or the
/// whole process (`CLOCK_PROCESS_CPUTIME_ID`), in seconds.
pub fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids exist on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Progress display, implemented by the binary (indicatif) or a no-op.
pub trait Progress: Sync {
    fn start(&self, _stage: &str, _total: u64) {}
    fn inc(&self, _n: u64) {}
    fn finish(&self, _stage: &str, _summary: &StageSummary) {}
    fn warn(&self, _msg: &str) {}
}

/// Progress that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Output of the device step for one sample: (array name, f32 values) in the array's layout.
pub type SampleOutput = Vec<(String, Vec<f32>)>;

/// Values a store of `dtype` cannot hold are a fault, never written.
pub fn check_values(data: &[f32], dtype: StoreDtype) -> std::result::Result<(), String> {
    let mut max = 0f32;
    for &x in data {
        if !x.is_finite() {
            return Err("non-finite feature value (NaN or inf)".to_string());
        }
        max = max.max(x.abs());
    }
    if dtype == StoreDtype::F16 && max > 65504.0 {
        return Err(format!(
            "feature magnitude {max} exceeds the f16 range (65504); extract with --store-dtype f32"
        ));
    }
    Ok(())
}

pub struct StageRun<'a> {
    pub name: &'a str,
    pub modality: &'a str,
    pub store: &'a FeatureStore,
    /// Arrays this stage writes, with their dtypes.
    pub arrays: Vec<(String, StoreDtype)>,
    /// Fixed batch groups of this shard (sample indices).
    pub groups: Vec<Vec<usize>>,
    pub sample_keys: &'a [String],
    pub workers: usize,
    pub queue: usize,
    pub strict: bool,
    /// Nanoseconds of the device step spent in upload + preprocessing, counted by the caller's
    /// `compute` (reported as `device_prep_seconds`).
    pub device_prep_ns: Option<&'a AtomicU64>,
}

impl<'a> StageRun<'a> {
    /// Counts the device step's upload + preprocessing time in `ns` (see `device_prep_ns`).
    pub fn with_device_prep(mut self, ns: &'a AtomicU64) -> Self {
        self.device_prep_ns = Some(ns);
        self
    }

    fn sample_done(&self, i: usize) -> bool {
        self.arrays.iter().all(|(a, _)| self.store.is_done(a, i))
    }

    /// Fault markers for sample `i` in every array of the stage (verify then tells the sample
    /// from one still to do).
    fn record_fault(&self, i: usize, f: &Fault) -> Result<()> {
        let v = serde_json::to_value(f).expect("a fault serialises");
        for (a, _) in &self.arrays {
            self.store.mark_faulted(a, i, &v)?;
        }
        Ok(())
    }

    /// Runs the stage. `prepare` runs on worker threads (decode + preprocess one sample);
    /// `compute` runs on the calling thread with the prepared samples of one group and returns
    /// each sample's outputs in the same order.
    pub fn run<P, FP, FC>(
        self,
        prepare: FP,
        mut compute: FC,
        progress: &dyn Progress,
        faults: &mut Vec<Fault>,
    ) -> Result<StageSummary>
    where
        P: Send,
        FP: Fn(usize) -> std::result::Result<P, SampleError> + Sync,
        FC: FnMut(Vec<(usize, P)>) -> Result<Vec<SampleOutput>>,
    {
        let t0 = Instant::now();
        let cpu0 = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID);
        let mut summary = StageSummary {
            stage: self.name.to_string(),
            ..Default::default()
        };
        let all: Vec<usize> = self.groups.iter().flatten().copied().collect();
        summary.already_done = all.iter().filter(|&&i| self.sample_done(i)).count();
        let pending: Vec<&Vec<usize>> = self
            .groups
            .iter()
            .filter(|g| g.iter().any(|&i| !self.sample_done(i)))
            .collect();
        let todo = all.len() - summary.already_done;
        progress.start(self.name, todo as u64);
        if pending.is_empty() {
            summary.seconds = t0.elapsed().as_secs_f64();
            progress.finish(self.name, &summary);
            return Ok(summary);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.workers)
            .thread_name(|i| format!("decode-{i}"))
            .build()
            .map_err(|e| Error::Msg(format!("cannot start decode workers: {e}")))?;
        type Prepared<P> = Vec<(usize, std::result::Result<P, SampleError>)>;
        let (group_tx, group_rx) = bounded::<Prepared<P>>(self.queue);
        let (write_tx, write_rx) = bounded::<Vec<(usize, SampleOutput)>>(self.queue);
        let store = self.store;
        let arrays = &self.arrays;
        let prepare = &prepare;
        let prepare_ns = AtomicU64::new(0);
        let prepare_ns = &prepare_ns;
        let prepare_cpu_ns = AtomicU64::new(0);
        let prepare_cpu_ns = &prepare_cpu_ns;
        let prepared = AtomicU64::new(0);
        let prepared = &prepared;
        let timed_prepare = move |i: usize| {
            let t = Instant::now();
            let c = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
            let p = prepare(i);
            let dc = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - c;
            prepare_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            prepare_cpu_ns.fetch_add((dc.max(0.0) * 1e9) as u64, Ordering::Relaxed);
            prepared.fetch_add(1, Ordering::Relaxed);
            p
        };

        let outcome: Result<()> = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                for group in pending {
                    let prepared: Prepared<P> =
                        pool.install(|| group.par_iter().map(|&i| (i, timed_prepare(i))).collect());
                    if group_tx.send(prepared).is_err() {
                        break; // consumer stopped (strict fault or error)
                    }
                }
            });
            let writer = scope.spawn(move || -> Result<(usize, f64)> {
                let mut written = 0;
                let mut busy = 0.0;
                // One group at a time: all its chunks, one sync round, then all its markers.
                for group in write_rx {
                    let t = Instant::now();
                    let items: Vec<SampleWrite> = group
                        .iter()
                        .flat_map(|(i, outputs)| {
                            outputs
                                .iter()
                                .filter(|(array, _)| !store.is_done(array, *i))
                                .map(|(array, data)| SampleWrite {
                                    array,
                                    index: *i,
                                    data,
                                })
                        })
                        .collect();
                    store.write_samples(&items)?;
                    let done: Vec<(&str, usize)> =
                        items.iter().map(|w| (w.array, w.index)).collect();
                    store.mark_done_many(&done)?;
                    written += group.len();
                    busy += t.elapsed().as_secs_f64();
                }
                Ok((written, busy))
            });

            let mut consume = || -> Result<()> {
                loop {
                    let t_wait = Instant::now();
                    let Ok(prepared) = group_rx.recv() else { break };
                    summary.wait_seconds += t_wait.elapsed().as_secs_f64();
                    let mut ok = Vec::with_capacity(prepared.len());
                    let mut newly_needed = 0u64;
                    for (i, p) in prepared {
                        let needed = !self.sample_done(i);
                        match p {
                            Ok(p) => ok.push((i, p, needed)),
                            Err(e) => {
                                if needed {
                                    newly_needed += 1;
                                    summary.faults += 1;
                                    let f = Fault {
                                        stage: self.name.to_string(),
                                        ..Fault::from(&e)
                                    };
                                    progress.warn(&format!("fault: {e}"));
                                    self.record_fault(i, &f)?;
                                    faults.push(f);
                                    if self.strict {
                                        return Err(Error::Sample(e));
                                    }
                                }
                            }
                        }
                    }
                    let needed: Vec<bool> = ok.iter().map(|(_, _, n)| *n).collect();
                    let indices: Vec<usize> = ok.iter().map(|(i, _, _)| *i).collect();
                    if needed.iter().any(|&n| n) {
                        let t_compute = Instant::now();
                        let outputs = compute(ok.into_iter().map(|(i, p, _)| (i, p)).collect())?;
                        if outputs.len() != indices.len() {
                            return Err(Error::Msg(format!(
                                "{}: device step returned {} outputs for {} samples",
                                self.name,
                                outputs.len(),
                                indices.len()
                            )));
                        }
                        summary.compute_seconds += t_compute.elapsed().as_secs_f64();
                        let mut to_write = Vec::with_capacity(indices.len());
                        for ((i, out), need) in indices.iter().zip(outputs).zip(needed) {
                            if !need {
                                continue;
                            }
                            newly_needed += 1;
                            let bad = out.iter().find_map(|(a, d)| {
                                let dt = arrays.iter().find(|(n, _)| n == a).map(|x| x.1);
                                match dt {
                                    None => Some(format!("internal: unknown array {a}")),
                                    Some(dt) => {
                                        check_values(d, dt).err().map(|m| format!("{a}: {m}"))
                                    }
                                }
                            });
                            if let Some(msg) = bad {
                                summary.faults += 1;
                                let f = Fault {
                                    stage: self.name.to_string(),
                                    sample: self.sample_keys[*i].clone(),
                                    modality: self.modality.to_string(),
                                    file: String::new(),
                                    error: msg.clone(),
                                };
                                progress
                                    .warn(&format!("fault: {} {}: {msg}", f.sample, f.modality));
                                self.record_fault(*i, &f)?;
                                faults.push(f);
                                if self.strict {
                                    return Err(Error::Msg(format!(
                                        "{} ({}): {msg}",
                                        self.sample_keys[*i], self.modality
                                    )));
                                }
                                continue;
                            }
                            to_write.push((*i, out));
                        }
                        if !to_write.is_empty() {
                            write_tx.send(to_write).map_err(|_| {
                                Error::Msg("feature writer stopped unexpectedly".into())
                            })?;
                        }
                    }
                    progress.inc(newly_needed);
                }
                Ok(())
            };
            let consumed = consume();
            drop(group_rx);
            drop(write_tx);
            let written = writer
                .join()
                .map_err(|_| Error::Msg("writer thread panicked".into()))?;
            producer
                .join()
                .map_err(|_| Error::Msg("decode thread panicked".into()))?;
            // When the writer failed, its error is the cause (the consumer then only saw the
            // channel close): report it, naming the file and the fault (disk full, ...).
            let (written, busy) = match (consumed, written) {
                (_, Err(w)) => return Err(w),
                (Err(c), Ok(_)) => return Err(c),
                (Ok(()), Ok(w)) => w,
            };
            summary.written = written;
            summary.write_seconds = busy;
            Ok(())
        });
        outcome?;
        summary.prepare_seconds = prepare_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        summary.prepare_cpu_seconds = prepare_cpu_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        summary.prepared = prepared.load(Ordering::Relaxed) as usize;
        summary.process_cpu_seconds = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        if let Some(ns) = self.device_prep_ns {
            summary.device_prep_seconds = ns.load(Ordering::Relaxed) as f64 * 1e-9;
        }
        summary.seconds = t0.elapsed().as_secs_f64();
        progress.finish(self.name, &summary);
        Ok(summary)
    }
}

/// Fixed batch groups over `n` samples: [0..bs), [bs..2bs), ...; shard `s` keeps groups g with
/// g % count == index, optionally restricted to samples for which `keep` holds.
pub fn batch_groups(
    n: usize,
    batch_size: usize,
    shard: super::config::Shard,
    keep: impl Fn(usize) -> bool,
) -> Vec<Vec<usize>> {
    (0..n.div_ceil(batch_size))
        .filter(|&g| shard.takes(g))
        .map(|g| {
            (g * batch_size..((g + 1) * batch_size).min(n))
                .filter(|&i| keep(i))
                .collect()
        })
        .filter(|g: &Vec<usize>| !g.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::config::Shard;

    #[test]
    fn groups_are_fixed_and_partition() {
        let all = batch_groups(10, 4, Shard::ALL, |_| true);
        assert_eq!(all, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        let a = batch_groups(10, 4, Shard { index: 0, count: 2 }, |_| true);
        let b = batch_groups(10, 4, Shard { index: 1, count: 2 }, |_| true);
        assert_eq!(a, vec![vec![0, 1, 2, 3], vec![8, 9]]);
        assert_eq!(b, vec![vec![4, 5, 6, 7]]);
    }

    #[test]
    fn value_checks() {
        assert!(check_values(&[1.0, -2.0], StoreDtype::F16).is_ok());
        assert!(check_values(&[f32::NAN], StoreDtype::F32).is_err());
        assert!(check_values(&[7e4], StoreDtype::F16).is_err());
        assert!(check_values(&[7e4], StoreDtype::F32).is_ok());
    }
}
