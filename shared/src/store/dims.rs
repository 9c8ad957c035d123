//! Zarr `dimension_names` of the store's arrays, so that `xarray` sees labelled dimensions.
//!
//! Every per-sample array's first dimension is `sample` (the coordinate arrays `sample`,
//! `class_code` and `split` label it). The other names follow the array name:
//!
//! | array | dimensions |
//! |---|---|
//! | `video/tokens` | sample, token, feature |
//! | `audio/tokens` | sample, window, token, feature |
//! | `audio/window_start_s` | sample, window |
//! | `image/pooled` | sample, layer, view, stat (0 mean, 1 max), feature |
//! | `image/tokens_L{i}` | sample, view, token, feature |
//! | `sensor/raw` | sample, step, channel |
//! | `video/frame_dino` | sample, frame, dino_feature |
//! | `audio/spectrogram` | sample, spec_frame, mel |
//! | `audio/spectrogram_clip` | sample, clip_fact (0 source seconds, 1 valid frames) |
//!
//! Any other array (or a known name with another rank) gets `sample, <leaf>_d1, <leaf>_d2, ...`,
//! unique to the array so that two unknown arrays of one group never claim one dimension with two
//! sizes (xarray refuses that). Names are unique within a zarr group: the arrays of one group
//! that share a name (`image/pooled` and `image/tokens_L*`: view, feature) share its size.

/// Coordinate arrays of the sample axis (1-D, dimension `sample`).
pub const SAMPLE_DIM: &str = "sample";

/// The `dimension_names` of the per-sample array `name` with `sample_ndim` dimensions per sample
/// (`sample_ndim + 1` names).
pub fn dimension_names(name: &str, sample_ndim: usize) -> Vec<String> {
    let leaf = name.rsplit('/').next().unwrap_or(name);
    let known: Option<&[&str]> = match name {
        "video/tokens" => Some(&["token", "feature"]),
        "audio/tokens" => Some(&["window", "token", "feature"]),
        "audio/window_start_s" => Some(&["window"]),
        "image/pooled" => Some(&["layer", "view", "stat", "feature"]),
        "sensor/raw" => Some(&["step", "channel"]),
        "video/frame_dino" => Some(&["frame", "dino_feature"]),
        "audio/spectrogram" => Some(&["spec_frame", "mel"]),
        "audio/spectrogram_clip" => Some(&["clip_fact"]),
        n if n.starts_with("image/tokens_L") => Some(&["view", "token", "feature"]),
        _ => None,
    };
    let mut out = vec![SAMPLE_DIM.to_string()];
    match known {
        Some(k) if k.len() == sample_ndim => out.extend(k.iter().map(|s| s.to_string())),
        _ => out.extend((1..=sample_ndim).map(|d| format!("{leaf}_d{d}"))),
    }
    out
}

/// The coordinate arrays of the sample axis, as `extract run` writes them: `sample` (the key),
/// `class_code` (-1 where unlabelled) and `split`; one value per sample, in store order.
pub fn sample_coords(
    keys: Vec<String>,
    class_codes: Vec<Option<u8>>,
    splits: Vec<String>,
) -> Vec<super::Coord> {
    use super::{Coord, CoordValues};
    vec![
        Coord {
            name: SAMPLE_DIM.into(),
            values: CoordValues::Str(keys),
        },
        Coord {
            name: "class_code".into(),
            values: CoordValues::I16(
                class_codes
                    .into_iter()
                    .map(|c| c.map_or(-1, i16::from))
                    .collect(),
            ),
        },
        Coord {
            name: "split".into(),
            values: CoordValues::Str(splits),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            dimension_names("image/tokens_L20", 3),
            ["sample", "view", "token", "feature"]
        );
        assert_eq!(
            dimension_names("audio/window_start_s", 1),
            ["sample", "window"]
        );
        assert_eq!(
            dimension_names("video/tokens", 3),
            ["sample", "tokens_d1", "tokens_d2", "tokens_d3"]
        );
        assert_eq!(dimension_names("feat", 0), ["sample"]);
    }
}
