"""Oracle for train-head/tests/cli_tensorboard.rs: reads run folders' TensorBoard event files
back with the `tensorboard` package's own readers (no TensorFlow needed).

Usage: python tb_events.py LOGDIR OUT_JSON

Writes OUT_JSON with
- "runs": the run names TensorBoard's EventMultiplexer finds under LOGDIR (what
  `tensorboard --logdir LOGDIR` lists, e.g. "a/tensorboard" for LOGDIR/a/tensorboard/);
- "raw": per run, every summary value of every record of every event file, in file order, read
  with EventFileLoader (which checks both CRCs of each record): scalars as
  {"tag", "step", "value"}, images as {"tag", "step", "width", "height", "png_matches"} where
  png_matches tells whether the bytes equal RUN/plots/<name>.png; "file_versions" lists each
  file's first event's file_version;
- "shown": per run, what EventAccumulator (the dashboards' loader) holds: scalars per tag as
  [step, value] pairs and images per tag as [step, width, height].
"""
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer


def raw_events(run_path, run_dir):
    scalars, images, versions = [], [], []
    files = sorted(f for f in os.listdir(run_path) if "tfevents" in f)
    for name in files:
        first = True
        for ev in event_file_loader.EventFileLoader(os.path.join(run_path, name)).Load():
            if first:
                versions.append(ev.file_version)
                first = False
            if not ev.HasField("summary"):
                continue
            for v in ev.summary.value:
                # EventFileLoader migrates simple_value / image to tensors with plugin metadata
                plugin = v.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    value = float(v.tensor.float_val[0])
                    scalars.append({"tag": v.tag, "step": ev.step, "value": value})
                elif plugin == "images":
                    width, height, png = v.tensor.string_val
                    plot = os.path.join(run_dir, "plots", v.tag.split("/", 1)[1] + ".png")
                    with open(plot, "rb") as f:
                        matches = f.read() == png
                    images.append(
                        {
                            "tag": v.tag,
                            "step": ev.step,
                            "width": int(width),
                            "height": int(height),
                            "png_matches": matches,
                        }
                    )
                else:
                    raise SystemExit(f"{name}: unexpected summary kind {plugin!r} for {v.tag}")
    return {"scalars": scalars, "images": images, "file_versions": versions}


def main():
    logdir, out = sys.argv[1], sys.argv[2]
    mux = EventMultiplexer(
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}
    )
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    result = {"runs": sorted(mux.Runs()), "raw": {}, "shown": {}}
    for run in result["runs"]:
        run_path = os.path.join(logdir, run)
        run_dir = os.path.dirname(run_path.rstrip("/"))
        result["raw"][run] = raw_events(run_path, run_dir)
        acc = mux.GetAccumulator(run)
        tags = acc.Tags()
        result["shown"][run] = {
            "scalars": {
                t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]
            },
            "images": {
                t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]
            },
        }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
