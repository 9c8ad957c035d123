//! Sensor CSV reader (pure Rust `csv`): the 6 numeric channels selected by column name, linear
//! resampling to a fixed number of steps, and per-sample z-scoring.
use std::path::Path;

use super::{Modality, SampleError};

/// Number of sensor channels.
pub const SENSOR_CHANNELS: usize = 6;

/// The sensor channels, in the order they are returned (selected by header name).
pub const SENSOR_COLUMNS: [&str; SENSOR_CHANNELS] = [
    "Pressure",
    "CO2 Weld Flow",
    "Feed",
    "Primary Weld Current",
    "Wire Consumed",
    "Secondary Weld Voltage",
];

/// All columns of the dataset's sensor CSV, in file order.
pub const SENSOR_CSV_HEADER: [&str; 10] = [
    "Date",
    "Time",
    "Part No",
    "Pressure",
    "CO2 Weld Flow",
    "Feed",
    "Primary Weld Current",
    "Wire Consumed",
    "Secondary Weld Voltage",
    "Remarks",
];

/// Minimum number of data rows for a usable sensor file (interpolation needs two).
pub const MIN_SENSOR_ROWS: usize = 2;

/// The 6 channels of one sensor file.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorTable {
    /// Number of time steps (data rows).
    pub rows: usize,
    /// [rows, SENSOR_CHANNELS] row-major, channel order = [`SENSOR_COLUMNS`].
    pub data: Vec<f32>,
}

/// Read the 6 channels of a sensor CSV by header name (surrounding spaces ignored, names
/// case-sensitive as in the dataset). Errors (modality `sensor`): unreadable file, a missing
/// column, a row with a different number of fields (truncated), an empty or non-numeric or
/// non-finite cell, fewer than [`MIN_SENSOR_ROWS`] rows.
pub fn read_sensor_csv(path: &Path, sample: &str) -> Result<SensorTable, SampleError> {
    let err = |msg: String| SampleError::new(sample, Modality::Sensor, path, msg);
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes.as_slice());
    let headers = rdr
        .headers()
        .map_err(|e| err(format!("cannot read header: {e}")))?
        .clone();
    let mut cols = [0usize; SENSOR_CHANNELS];
    for (slot, name) in cols.iter_mut().zip(SENSOR_COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| err(format!("missing column {name:?}")))?;
    }
    let mut data = Vec::new();
    let mut rows = 0usize;
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(format!("line {line}: {e}")))?;
        for (&c, name) in cols.iter().zip(SENSOR_COLUMNS) {
            let cell = rec.get(c).unwrap_or("").trim();
            let v: f32 = cell.parse().map_err(|_| {
                err(format!(
                    "line {line}, column {name:?}: not a number: {cell:?}"
                ))
            })?;
            if !v.is_finite() {
                return Err(err(format!(
                    "line {line}, column {name:?}: non-finite value {cell:?}"
                )));
            }
            data.push(v);
        }
        rows += 1;
    }
    if rows < MIN_SENSOR_ROWS {
        return Err(err(format!(
            "{rows} data rows, need at least {MIN_SENSOR_ROWS}"
        )));
    }
    Ok(SensorTable { rows, data })
}

/// Linear interpolation of every channel to `steps` points spread evenly from the first to the
/// last row inclusive: output step `i` reads source position `i * (rows - 1) / (steps - 1)`
/// (`np.interp` on `np.linspace(0, rows - 1, steps)`, `F.interpolate(..., "linear",
/// align_corners=True)`); `steps == 1` gives the first row.
/// Returns [steps, SENSOR_CHANNELS] row-major.
pub fn resample_linear(table: &SensorTable, steps: usize) -> Vec<f32> {
    let c = SENSOR_CHANNELS;
    let n = table.rows;
    let mut out = vec![0f32; steps * c];
    if n == 0 {
        return out;
    }
    for i in 0..steps {
        let pos = if steps > 1 {
            i as f64 * (n - 1) as f64 / (steps - 1) as f64
        } else {
            0.0
        };
        let lo = (pos.floor() as usize).min(n - 1);
        let hi = (lo + 1).min(n - 1);
        let w = (pos - lo as f64) as f32;
        for ch in 0..c {
            let a = table.data[lo * c + ch];
            let b = table.data[hi * c + ch];
            out[i * c + ch] = a + (b - a) * w;
        }
    }
    out
}

/// Per-channel z-score over time in place: `(x - mean) / std` with the population standard
/// deviation (divide by T); a constant channel (std 0) is divided by 1 (only centred).
/// `data` is [T, channels] row-major.
pub fn zscore_per_sample(data: &mut [f32], channels: usize) {
    if channels == 0 || data.is_empty() {
        return;
    }
    let t = data.len() / channels;
    for ch in 0..channels {
        let mean = (0..t).map(|i| data[i * channels + ch] as f64).sum::<f64>() / t as f64;
        let var = (0..t)
            .map(|i| (data[i * channels + ch] as f64 - mean).powi(2))
            .sum::<f64>()
            / t as f64;
        // Exactly constant channel -> std 1 (a computed variance can be a rounding residue).
        let first = data[ch];
        let constant = (0..t).all(|i| data[i * channels + ch] == first);
        let std = if constant || var <= 0.0 {
            1.0
        } else {
            var.sqrt()
        };
        for i in 0..t {
            let v = &mut data[i * channels + ch];
            *v = ((*v as f64 - mean) / std) as f32;
        }
    }
}
