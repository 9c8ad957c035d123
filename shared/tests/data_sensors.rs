//! Sensor CSV reader: channels by name, exact linear interpolation, z-score, strict errors.
use std::path::Path;

use weld_cache::data::sensors::{
    read_sensor_csv, resample_linear, zscore_per_sample, SENSOR_CHANNELS,
};
use weld_cache::data::Modality;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

// Columns deliberately out of the dataset's order, plus extra columns, with spaces in headers.
const CSV: &str = "\
Remarks, Feed ,Date,Pressure,Secondary Weld Voltage,Part No,Primary Weld Current,Time,CO2 Weld Flow,Wire Consumed
ok,1.0,2022-11-18,4.0,20.0,7,100.0,08:00:00,10.0,0.0
,3.0,2022-11-18,4.5,22.0,7,160.0,08:00:01,12.0,0.5
x,2.0,2022-11-18,5.0,21.0,7,130.0,08:00:02,11.0,1.5
";

#[test]
fn channels_by_name_and_exact_interpolation() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "log.csv", CSV);
    let t = read_sensor_csv(&p, "s1").unwrap();
    assert_eq!(t.rows, 3);
    // order: Pressure, CO2 Weld Flow, Feed, Primary Weld Current, Wire Consumed, Secondary V
    assert_eq!(&t.data[0..6], &[4.0, 10.0, 1.0, 100.0, 0.0, 20.0]);
    assert_eq!(&t.data[12..18], &[5.0, 11.0, 2.0, 130.0, 1.5, 21.0]);
    // 5 steps over 3 rows: positions 0, 0.5, 1, 1.5, 2
    let r = resample_linear(&t, 5);
    assert_eq!(r.len(), 5 * SENSOR_CHANNELS);
    let col = |c: usize| (0..5).map(|i| r[i * 6 + c]).collect::<Vec<f32>>();
    assert_eq!(col(0), vec![4.0, 4.25, 4.5, 4.75, 5.0]);
    assert_eq!(col(2), vec![1.0, 2.0, 3.0, 2.5, 2.0]);
    assert_eq!(col(3), vec![100.0, 130.0, 160.0, 145.0, 130.0]);
    assert_eq!(col(4), vec![0.0, 0.25, 0.5, 1.0, 1.5]);
    // 1 step -> first row; same length -> identity
    assert_eq!(resample_linear(&t, 1), t.data[0..6].to_vec());
    assert_eq!(resample_linear(&t, 3), t.data);
    // 128 steps: endpoints exact, interior on the segment
    let r = resample_linear(&t, 128);
    assert_eq!(r[3], 100.0);
    assert_eq!(r[127 * 6 + 3], 130.0);
    let mid = 64.0 * 2.0 / 127.0; // position of step 64
    let expect = 160.0 + (130.0 - 160.0) * (mid - 1.0);
    assert!((r[64 * 6 + 3] - expect as f32).abs() < 1e-4);
}

#[test]
fn zscore_per_channel() {
    // [4, 2]: channel 0 varies, channel 1 constant
    let mut d = vec![1.0f32, 5.0, 2.0, 5.0, 3.0, 5.0, 4.0, 5.0];
    zscore_per_sample(&mut d, 2);
    let c0: Vec<f32> = d.iter().step_by(2).copied().collect();
    let mean: f32 = c0.iter().sum::<f32>() / 4.0;
    let var: f32 = c0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
    assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{c0:?}");
    // population std of 1..4 is sqrt(1.25)
    assert!((c0[0] - (-1.5 / 1.25f32.sqrt())).abs() < 1e-6);
    // constant channel: centred, divided by 1
    assert_eq!(
        d.iter().skip(1).step_by(2).copied().collect::<Vec<_>>(),
        vec![0.0; 4]
    );
    // constant but not exactly representable mean
    let mut d = vec![0.1f32; 6 * 3];
    zscore_per_sample(&mut d, 6);
    assert!(d.iter().all(|v| *v == 0.0), "{d:?}");
}

#[test]
fn bad_sensor_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "missing_col.csv",
            CSV.replace("CO2 Weld Flow", "CO2 Flow"),
            "CO2 Weld Flow",
        ),
        ("text_cell.csv", CSV.replace("160.0", "abc"), "not a number"),
        ("empty_cell.csv", CSV.replace("160.0", ""), "not a number"),
        ("nan_cell.csv", CSV.replace("160.0", "NaN"), "non-finite"),
        ("truncated.csv", CSV.replace(",11.0,1.5\n", "\n"), "line 4"),
        (
            "one_row.csv",
            CSV.lines().take(2).collect::<Vec<_>>().join("\n"),
            "at least 2",
        ),
        (
            "header_only.csv",
            CSV.lines().take(1).collect::<String>(),
            "at least 2",
        ),
    ];
    for (name, text, needle) in cases {
        let p = write(dir.path(), name, &text);
        let e = read_sensor_csv(&p, "smp").expect_err(name);
        assert_eq!(e.sample, "smp");
        assert_eq!(e.modality, Modality::Sensor);
        assert_eq!(e.file, p);
        assert!(e.message.contains(needle), "{name}: {}", e.message);
        let shown = e.to_string();
        assert!(shown.contains("smp") && shown.contains("sensor") && shown.contains(name));
    }
    let e = read_sensor_csv(&dir.path().join("absent.csv"), "smp").unwrap_err();
    assert_eq!(e.modality, Modality::Sensor);
}
