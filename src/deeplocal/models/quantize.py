"""GGUF -> Q8_0 / Q6_K / Q5_K_M / Q4_K_M / Q4_0 through llama.cpp's own `llama_model_quantize`."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from deeplocal.models.errors import InvalidModelFile, ModelError, StoreFull
from deeplocal.models.fileio import Progress, sha256_file
from deeplocal.models.gguf_meta import read_gguf_info
from deeplocal.models.importer import gguf_manifest
from deeplocal.models.llama_lowlevel import import_llama, quiet_llama
from deeplocal.models.manifest import Manifest, check_id, slugify
from deeplocal.models.store import ModelStore

# name -> llama_ftype (values from llama.h; checked against llama_cpp's constants at call time)
QUANT_TYPES: dict[str, str] = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
}
UNQUANTIZED = {"F32", "F16", "BF16"}


def parse_type(name: str) -> str:
    key = name.upper()
    if key not in QUANT_TYPES:
        raise ModelError(f"unknown quantization type {name!r}; choose one of {', '.join(QUANT_TYPES)}")
    return key


def load_imatrix(path: Path) -> dict[str, np.ndarray]:
    """An importance matrix in llama-imatrix's GGUF format: per tensor, in_sum2 / counts (per expert)."""
    from gguf import GGUFReader

    from deeplocal.models.gguf_meta import is_gguf

    if not is_gguf(path):
        raise InvalidModelFile(f"{path}: not a GGUF imatrix (make one with llama-imatrix, GGUF output)")
    reader = GGUFReader(path)
    tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
    out: dict[str, np.ndarray] = {}
    for name, sums in tensors.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name.removesuffix(".in_sum2")
        counts = tensors.get(f"{base}.counts")
        if counts is None:
            raise InvalidModelFile(f"{path}: {base} has in_sum2 but no counts")
        counts = counts.reshape(-1)
        rows = sums.reshape(len(counts), -1).astype(np.float32)
        scaled = np.where(counts[:, None] > 0, rows / np.maximum(counts[:, None], 1), 1.0)
        out[base] = np.ascontiguousarray(scaled.reshape(-1), dtype=np.float32)
    if not out:
        raise InvalidModelFile(f"{path}: no '<tensor>.in_sum2' entries: not an importance matrix")
    return out


def _imatrix_array(ll, data: dict[str, np.ndarray]):
    """A NULL-terminated llama_model_imatrix_data[]; the returned tuple keeps the buffers alive."""
    entries = (ll.llama_model_imatrix_data * (len(data) + 1))()
    keep = []
    for i, (name, values) in enumerate(sorted(data.items())):
        raw_name = name.encode()
        keep.extend([raw_name, values])
        entries[i].name = raw_name
        entries[i].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        entries[i].size = values.size
    entries[len(data)].name = None
    return entries, keep


def quantize_file(src: Path, dst: Path, qtype: str, *, imatrix: dict[str, np.ndarray] | None = None,
                  n_threads: int = 1, verbose: bool = False) -> None:
    """Quantize one GGUF file into another with llama.cpp (k-quant mixes chosen by llama.cpp)."""
    ll = import_llama()
    qtype = parse_type(qtype)
    info = read_gguf_info(src)
    upcast = qtype in UNQUANTIZED  # to F16/BF16: llama.cpp dequantizes, nothing is lost twice
    if info.quantization not in UNQUANTIZED and not upcast:
        raise ModelError(f"{src} is already {info.quantization}; quantize from an F32/F16/BF16 GGUF "
                         "(`deeplocal models convert`), requantizing loses accuracy twice")
    params = ll.llama_model_quantize_default_params()
    params.ftype = getattr(ll, QUANT_TYPES[qtype])
    params.nthread = n_threads
    params.allow_requantize = upcast
    keep = None
    if imatrix:
        entries, keep = _imatrix_array(ll, imatrix)
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(ll.llama_model_imatrix_data))
    with quiet_llama(verbose):
        status = ll.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    del keep
    if status != 0:
        free = os.statvfs(dst.parent).f_bavail * os.statvfs(dst.parent).f_frsize
        dst.unlink(missing_ok=True)
        if free < info.size_bytes // 4:
            raise StoreFull(f"quantizing {src.name} to {qtype} failed with {free} bytes free: "
                            "the disk is probably full; the partial file was removed")
        raise ModelError(f"llama.cpp failed to quantize {src.name} to {qtype} (status {status})")
    read_gguf_info(dst)  # complete and readable, or InvalidModelFile


def quantize_model(store: ModelStore, source: str, qtype: str, *, model_id: str | None = None,
                   imatrix_path: Path | None = None, n_threads: int = 1, replace: bool = False,
                   progress: Progress | None = None) -> Manifest:
    """Quantize a GGUF model from the store into a new store entry `<id>-<type>`."""
    from deeplocal.models.resolve import resolve_model

    qtype = parse_type(qtype)
    src = resolve_model(source, store_dir=store.root)
    if src.format != "gguf":
        raise ModelError(f"{src.id} is {src.format}; convert it to GGUF first (`deeplocal models convert`)")
    base = src.id.removesuffix(f"-{src.manifest.quantization.lower()}")
    model_id = check_id(model_id or slugify(f"{base}-{qtype}"))
    imatrix = load_imatrix(imatrix_path) if imatrix_path else None
    with store.staging() as staged:
        out = staged / f"{model_id}.gguf"
        quantize_file(src.path, out, qtype, imatrix=imatrix, n_threads=n_threads)
        note = f"quantize:{src.id}:{qtype}" + (f"+imatrix:{imatrix_path.name}" if imatrix_path else "")
        manifest = gguf_manifest(out, model_id=model_id, source=note, sha256=sha256_file(out, progress),
                                 license=src.manifest.license, parent=src.id)
        return store.commit(staged, manifest, replace=replace)
