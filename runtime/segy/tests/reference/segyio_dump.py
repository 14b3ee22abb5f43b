#!/usr/bin/env python3
"""Dump what Python's segyio reads from a SEG-Y or Seismic Unix file.

The output is the reference that ``runtime/segy/tests/segyio_reference.rs`` compares
mlp-segy against.

Usage::

    segyio_dump.py PATH --out DIR [--endian big|little] [--su]
                   [--iline N --xline N --offset N]
    segyio_dump.py --batch JOBS.json

``--batch`` reads a JSON list of jobs, each an object with the keys ``path`` and ``out``
and optionally ``endian``, ``su``, ``iline``, ``xline`` and ``offset``, and dumps them all
from one Python process (starting Python and importing numpy once per file would dominate
the test's run time).

The file is opened with geometry first (``strict``); when segyio raises, it is opened again
with ``ignore_geometry=True`` and the first error is recorded as ``geometry_error``. DIR
receives:

* ``meta.json``: ``ok``, ``error``, ``geometry_error``, ``format`` (binary header code;
  5 for SU), ``dtype``, ``sorting`` (1 crossline, 2 inline, null without geometry),
  ``ilines``, ``xlines``, ``offsets`` (null without geometry), ``samples`` (``f.samples``),
  ``tracecount``, ``ext_headers``, ``revision`` (binary header byte 3501), ``text``
  (``f.text[0]`` decoded as Latin-1; null for SU), ``ext_text``, ``bin`` (binary header
  fields by name, ``{"byte", "value"}``), ``headers`` (``{name: {"byte", "len", "values"}}`` for every distinct
  ``segyio.TraceField`` byte; ``len`` is the distance to the next field), and, with
  geometry, ``cube_order`` (``"il_xl"`` or ``"xl_il"``: the axis order of ``cube.npy`` and
  ``depth.npy``), ``inline`` / ``crossline`` (the line numbers dumped) and ``depth_index``.
* ``traces.npy``: ``f.trace.raw[:]`` in segyio's native dtype, little-endian.
* with geometry: ``cube.npy`` (``segyio.tools.cube(f)``), ``inline.npy``
  (``[xl, (offsets,) samples]``), ``crossline.npy`` (``[il, (offsets,) samples]``) and
  ``depth.npy`` (``f.depth_slice[k]``, which for pre-stack files holds the first offset).

segyio does not know every format code (1.9 has no 3-byte integers, 7 and 15): it then
warns "Unknown trace value format N, falling back to ibm float" and reads the samples as
IBM floats. That warning is turned into an error here, so such files report ``ok: false``
with an error that names the format instead of garbage samples.

On failure to open, ``meta.json`` says ``ok: false`` with the error and the script still
exits 0.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import segyio


def opener(su):
    return segyio.su.open if su else segyio.open


def describe(exc):
    text = str(exc)
    name = type(exc).__name__
    return "{}: {}".format(name, text) if text else name


def le(arr):
    """A C-contiguous little-endian copy of an array."""
    arr = np.asarray(arr)
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))


def save(out, name, arr, files):
    np.save(os.path.join(out, name), le(arr))
    files.append(name)


def trace_fields():
    """(name, byte, len) of every distinct TraceField byte, in byte order."""
    seen = {}
    for field in segyio.TraceField.enums():
        byte = int(field)
        if byte not in seen:
            seen[byte] = str(field)
    bytes_ = sorted(seen)
    out = []
    for i, byte in enumerate(bytes_):
        end = bytes_[i + 1] if i + 1 < len(bytes_) else 241
        out.append((seen[byte], byte, end - byte))
    return out


def open_segyio(path, su, endian, iline, xline, ignore):
    with warnings.catch_warnings():
        # segyio falls back to IBM floats for formats it does not know: make that an error.
        warnings.filterwarnings("error", message=".*[Uu]nknown trace value format.*")
        return opener(su)(
            path,
            "r",
            iline=iline,
            xline=xline,
            endian=endian,
            ignore_geometry=ignore,
        )


def dump(path, out, endian="big", su=False, iline=189, xline=193, offset=37):
    os.makedirs(out, exist_ok=True)
    meta = {
        "path": path,
        "ok": False,
        "error": None,
        "geometry_error": None,
        "endian": endian,
        "su": su,
        "iline_byte": iline,
        "xline_byte": xline,
        # segyio always reads offsets from byte 37; recorded for the record.
        "offset_byte": offset,
        "files": [],
    }
    files = meta["files"]
    f = None
    try:
        try:
            f = open_segyio(path, su, endian, iline, xline, False)
        except Exception as exc:  # noqa: BLE001 - segyio raises many kinds
            meta["geometry_error"] = describe(exc)
            f = open_segyio(path, su, endian, iline, xline, True)
    except Exception as exc:  # noqa: BLE001
        meta["error"] = describe(exc)
        write_meta(out, meta)
        return meta

    try:
        with f:
            fill(f, su, out, meta, files)
        meta["ok"] = True
    except Exception as exc:  # noqa: BLE001
        meta["ok"] = False
        meta["error"] = "reading after open: " + describe(exc)
    write_meta(out, meta)
    return meta


def fill(f, su, out, meta, files):
    meta["format"] = 5 if su else int(f.bin[segyio.BinField.Format])
    meta["segyio_format"] = int(f.format)
    meta["dtype"] = str(np.dtype(f.dtype))
    meta["tracecount"] = int(f.tracecount)
    meta["samples"] = [float(s) for s in f.samples]
    meta["ext_headers"] = int(f.ext_headers)
    if su:
        meta["revision"] = None
        meta["text"] = None
        meta["ext_text"] = []
        meta["bin"] = {}
    else:
        meta["revision"] = int(f.bin[segyio.BinField.SEGYRevision])
        meta["text"] = bytes(f.text[0]).decode("latin-1")
        meta["ext_text"] = [
            bytes(f.text[i]).decode("latin-1") for i in range(1, f.ext_headers + 1)
        ]
        binh = f.bin
        meta["bin"] = {
            str(k): {"byte": int(k), "value": int(v)} for k, v in binh.items()
        }

    headers = {}
    for name, byte, width in trace_fields():
        values = np.asarray(f.attributes(byte)[:]).astype(np.int64)
        headers[name] = {"byte": byte, "len": width, "values": values.tolist()}
    meta["headers"] = headers

    save(out, "traces.npy", f.trace.raw[:], files)

    if f.ilines is None:
        meta["sorting"] = None
        meta["ilines"] = meta["xlines"] = meta["offsets"] = None
        return
    meta["sorting"] = int(f.sorting)
    meta["ilines"] = [int(x) for x in f.ilines]
    meta["xlines"] = [int(x) for x in f.xlines]
    meta["offsets"] = [int(x) for x in f.offsets]
    inline_sorted = f.sorting == segyio.TraceSortingFormat.INLINE_SORTING
    meta["cube_order"] = "il_xl" if inline_sorted else "xl_il"

    save(out, "cube.npy", segyio.tools.cube(f), files)

    offsets = list(f.offsets)

    def line(mode, number):
        parts = [np.copy(mode[number, o]) for o in offsets]
        arr = np.stack(parts, axis=1)  # [other line, offsets, samples]
        return arr[:, 0, :] if len(offsets) == 1 else arr

    il = int(f.ilines[len(f.ilines) // 2])
    xl = int(f.xlines[len(f.xlines) // 2])
    meta["inline"] = il
    meta["crossline"] = xl
    save(out, "inline.npy", line(f.iline, il), files)
    save(out, "crossline.npy", line(f.xline, xl), files)
    k = len(f.samples) // 2
    meta["depth_index"] = k
    save(out, "depth.npy", f.depth_slice[k], files)


def write_meta(out, meta):
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?")
    p.add_argument("--out")
    p.add_argument("--endian", default="big", choices=["big", "little"])
    p.add_argument("--su", action="store_true")
    p.add_argument("--iline", type=int, default=189)
    p.add_argument("--xline", type=int, default=193)
    p.add_argument("--offset", type=int, default=37)
    p.add_argument("--batch", help="a JSON list of jobs to dump from one process")
    a = p.parse_args(argv)
    if a.batch:
        with open(a.batch) as fh:
            jobs = json.load(fh)
        for job in jobs:
            dump(
                job["path"],
                job["out"],
                endian=job.get("endian", "big"),
                su=bool(job.get("su", False)),
                iline=int(job.get("iline", 189)),
                xline=int(job.get("xline", 193)),
                offset=int(job.get("offset", 37)),
            )
        return 0
    if not a.path or not a.out:
        p.error("PATH and --out are required (or --batch)")
    dump(a.path, a.out, a.endian, a.su, a.iline, a.xline, a.offset)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
