"""Oracle of the store tests (shared/tests/store_python.rs): Python `zarr` 3 on either side.

  read STORE OUT   open a store written by Rust with zarr, list every array of the hierarchy,
                   dump each float array's values as raw little-endian bytes (OUT/<name with / ->
                   __>.bin), and check them against the f32 inputs Rust left in OUT/inputs/ cast by
                   numpy (float16: astype, round to nearest even); other arrays (coordinates) are
                   dumped as JSON values. Every warning raised while listing and reading is
                   recorded. Writes OUT/read.json.
  xarray STORE OUT open the store with xarray (root dataset and the whole tree), recording every
                   warning; per node: each variable's dims, sizes and dtype, the coordinates and
                   their values. Writes OUT/xarray.json.
  write STORE OUT  write a zarr v3 group with Rust's layout (one sample per chunk, no compression,
                   bytes codec little endian, empty chunks stored), a nested name, an all-zero
                   sample, a '.' chunk-key separator, and one never-written sample; dump the
                   expected bytes per array and OUT/written.json.
"""

import json
import os
import sys
import warnings

import numpy as np
import zarr
from zarr.codecs import BytesCodec

NP_DTYPE = {"float16": "<f2", "float32": "<f4"}


def flat(name):
    return name.replace("/", "__")


def read(store, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_all(store, out)
    result["warnings"] = [str(w.message) for w in caught]
    with open(os.path.join(out, "read.json"), "w") as f:
        json.dump(result, f, indent=1)


def read_all(store, out):
    g = zarr.open_group(store, mode="r")
    members = g.members(max_depth=None)
    arrays = {}
    for name, node in members:
        if not isinstance(node, zarr.Array):
            continue
        dtype = str(node.dtype)
        if dtype not in NP_DTYPE:
            arrays[name] = {
                "dtype": dtype,
                "shape": list(node.shape),
                "dimension_names": list(node.metadata.dimension_names or []),
                "values": [v.item() if hasattr(v, "item") else v for v in node[...].tolist()],
            }
            continue
        data = np.ascontiguousarray(node[...]).astype(NP_DTYPE[dtype], copy=False)
        with open(os.path.join(out, flat(name) + ".bin"), "wb") as f:
            f.write(data.tobytes())
        info = {
            "dtype": dtype,
            "shape": list(node.shape),
            "chunks": list(node.chunks),
            "compressors": [str(c) for c in node.compressors],
            "dimension_names": list(node.metadata.dimension_names or []),
        }
        inp = os.path.join(out, "inputs", flat(name) + ".f32")
        if os.path.exists(inp):
            x = np.fromfile(inp, dtype="<f4").reshape(node.shape)
            cast = x.astype(NP_DTYPE[dtype])
            same = np.array_equal(cast.view(np.uint8), data.view(np.uint8))
            info["numpy_cast_bit_exact"] = bool(same)
            info["max_abs_diff_vs_input"] = float(np.max(np.abs(data.astype(np.float64) - x)))
        arrays[name] = info
    groups = {name: dict(node.attrs) for name, node in members if isinstance(node, zarr.Group)}
    return {"attrs": dict(g.attrs), "arrays": arrays, "groups": groups}


def describe(ds):
    return {
        "dims": {k: int(v) for k, v in ds.sizes.items()},
        "vars": {
            k: {"dims": list(v.dims), "dtype": str(v.dtype)} for k, v in ds.data_vars.items()
        },
        "coords": {k: {"dims": list(v.dims), "values": [str(x) for x in v.values.tolist()]}
                   for k, v in ds.coords.items()},
    }


def xarray_mode(store, out):
    import xarray as xr

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        root = xr.open_zarr(store, consolidated=False)
        tree = xr.open_datatree(store, engine="zarr", consolidated=False)
        nodes = {node.path: describe(node.to_dataset(inherit=True)) for node in tree.subtree}
        result = {"root": describe(root), "tree": nodes, "xarray": xr.__version__}
    result["warnings"] = [str(w.message) for w in caught]
    with open(os.path.join(out, "xarray.json"), "w") as f:
        json.dump(result, f, indent=1)


def create(g, name, shape, dtype, separator="/"):
    return g.create_array(
        name,
        shape=shape,
        chunks=(1,) + tuple(shape[1:]),
        dtype=dtype,
        compressors=None,
        serializer=BytesCodec(endian="little"),
        fill_value=0,
        chunk_key_encoding={"name": "default", "separator": separator},
        config={"write_empty_chunks": True},
    )


def write(store, out):
    rng = np.random.default_rng(7)
    n = 5
    g = zarr.open_group(store, mode="w", attributes={"origin": "python", "n": n})
    specs = [
        ("a16", (n, 3, 4), "float16", "/"),
        ("nested/deeper/b32", (n, 7), "float32", "/"),
        ("dots16", (n, 2, 2, 3), "float16", "."),
    ]
    written = {}
    for name, shape, dtype, sep in specs:
        arr = create(g, name, shape, dtype, sep)
        full = (rng.standard_normal(shape) * 3.0).astype(NP_DTYPE[dtype])
        full[1] = 0  # all-zero sample: its chunk must still exist
        missing = [4] if name == "a16" else []
        for i in range(n):
            if i not in missing:
                arr[i] = full[i]
        with open(os.path.join(out, flat(name) + ".bin"), "wb") as f:
            f.write(full.tobytes())
        written[name] = {"dtype": dtype, "shape": list(shape), "missing": missing}
    with open(os.path.join(out, "written.json"), "w") as f:
        json.dump({"arrays": written, "zarr": zarr.__version__}, f, indent=1)


if __name__ == "__main__":
    mode, store, out = sys.argv[1:4]
    {"read": read, "write": write, "xarray": xarray_mode}[mode](store, out)
