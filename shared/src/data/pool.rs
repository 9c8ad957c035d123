//! Reusable u8 CPU tensors for decoded media (image views, video clips). A fresh tensor per
//! decode has every page faulted in and zeroed by the kernel on first write: a 1920x1080 view is
//! ~1,500 page faults, and glibc hands such blocks back to the system between uses, so it happens
//! on every view (measured with `perf`: ~15% of the image workers' CPU, ~7,600 faults a weld).
//! A decoder takes a tensor of the shape it needs from [`DECODE_POOL`]; the device step gives it
//! back once it is preprocessed, and the stage runner clears the pool when a stage ends.
use std::collections::VecDeque;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

/// A bounded set of free u8 CPU tensors, matched by shape.
pub struct U8Pool {
    free: Mutex<VecDeque<Tensor>>,
    max_bytes: usize,
}

fn bytes_of(t: &Tensor) -> usize {
    t.numel()
}

impl U8Pool {
    /// A pool keeping at most `max_bytes` of free tensors (the oldest are dropped first).
    pub const fn new(max_bytes: usize) -> Self {
        Self {
            free: Mutex::new(VecDeque::new()),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Tensor>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A contiguous u8 CPU tensor of `shape` with unspecified contents: a pooled one of that
    /// shape, else a new one. The caller overwrites every byte.
    pub fn take(&self, shape: &[i64]) -> Tensor {
        let reused = {
            let mut free = self.lock();
            let hit = free.iter().position(|t| t.size() == shape);
            hit.and_then(|k| free.remove(k))
        };
        reused.unwrap_or_else(|| Tensor::empty(shape, (Kind::Uint8, Device::Cpu)))
    }

    /// Hands a tensor back for reuse (kept only when it is a contiguous u8 CPU tensor). The
    /// caller must hold no other tensor sharing its storage (a view of it, or the alias
    /// `to_device` returns for a CPU target): a later decode overwrites it.
    pub fn give(&self, t: Tensor) {
        if t.device() != Device::Cpu || t.kind() != Kind::Uint8 || !t.is_contiguous() {
            return;
        }
        let mut free = self.lock();
        free.push_back(t);
        let mut held: usize = free.iter().map(bytes_of).sum();
        while held > self.max_bytes {
            match free.pop_front() {
                Some(old) => held -= bytes_of(&old),
                None => break,
            }
        }
    }

    /// `f` applied to `raw` on `device`, after which `raw` goes back to the pool: the one place
    /// the device and CPU preprocessing hand decoded tensors back. On the CPU, `to_device` returns
    /// an alias of `raw`; it is dropped before `raw` is given back. `f` must return new tensors,
    /// never a view of its input (the preprocessing functions convert to f32 first).
    pub fn use_then_give<T>(&self, raw: Tensor, device: Device, f: impl FnOnce(&Tensor) -> T) -> T {
        let on = raw.to_device(device);
        let out = f(&on);
        drop(on);
        self.give(raw);
        out
    }

    /// Drops every free tensor (a stage has ended: the next one decodes other shapes).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Bytes held by free tensors.
    pub fn held_bytes(&self) -> usize {
        self.lock().iter().map(bytes_of).sum()
    }
}

/// The decoders' pool: up to 512 MB of free tensors (80 full-HD views, or 50 clips of 32 grey
/// 640x480 frames), about what the decode queue holds in flight at once.
pub static DECODE_POOL: U8Pool = U8Pool::new(512 << 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_by_shape_and_stays_within_its_bytes() {
        let pool = U8Pool::new(100);
        let a = pool.take(&[2, 3, 3]);
        let ptr = a.data_ptr();
        pool.give(a);
        assert_eq!(pool.held_bytes(), 18);
        let other = pool.take(&[3, 2, 3]);
        assert_ne!(other.data_ptr(), ptr, "another shape is a new tensor");
        let again = pool.take(&[2, 3, 3]);
        assert_eq!(again.data_ptr(), ptr, "the same shape reuses the storage");
        assert_eq!(pool.held_bytes(), 0);
        // over the cap: the oldest go first
        for _ in 0..6 {
            pool.give(pool.take(&[20]));
        }
        pool.give(Tensor::zeros([20], (Kind::Uint8, Device::Cpu)));
        pool.give(Tensor::zeros([70], (Kind::Uint8, Device::Cpu)));
        assert_eq!(pool.held_bytes(), 90);
        // not kept: other dtypes, non-contiguous views
        pool.give(Tensor::zeros([4], (Kind::Float, Device::Cpu)));
        pool.give(Tensor::zeros([4, 4], (Kind::Uint8, Device::Cpu)).tr());
        assert_eq!(pool.held_bytes(), 90);
        pool.clear();
        assert_eq!(pool.held_bytes(), 0);
        // use_then_give: the result is computed, then the input is back in the pool
        let raw = pool.take(&[2, 2, 3]);
        let ptr = raw.data_ptr();
        let sum = pool.use_then_give(raw, Device::Cpu, |x| {
            x.to_kind(Kind::Float).sum(Kind::Float)
        });
        assert_eq!(sum.dim(), 0);
        assert_eq!(pool.take(&[2, 2, 3]).data_ptr(), ptr);
    }
}
