"""Read and write .safetensors with numpy only (BF16 handled by bit shifts), so conversion needs no torch."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deeplocal.models.errors import InvalidModelFile
from deeplocal.models.hf_meta import read_safetensors_header

NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
                "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
DTYPE_NAMES = {np.dtype(v).str: k for k, v in NUMPY_DTYPES.items()}


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """uint16 BF16 bit patterns -> float32 (BF16 is the top half of an F32)."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> BF16 bit patterns, rounding to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + (0x7FFF + ((bits >> 16) & 1))
    return (rounded >> 16).astype(np.uint16)


def iter_tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) from a .safetensors file, memory-mapped; BF16 comes back as float32."""
    header = read_safetensors_header(path)
    (length,) = struct.unpack("<Q", path.open("rb").read(8))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        dtype = spec["dtype"]
        shape = tuple(spec["shape"])
        raw = data[start:end]
        if dtype == "BF16":
            yield name, bf16_to_f32(raw.view(np.uint16).reshape(shape))
        elif dtype in NUMPY_DTYPES:
            yield name, raw.view(NUMPY_DTYPES[dtype]).reshape(shape)
        else:
            raise InvalidModelFile(f"{path}: tensor {name} has dtype {dtype}, which cannot be converted "
                                   "(FP8/quantized checkpoints are served by vLLM as they are)")


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], *, bf16: tuple[str, ...] = (),
                      metadata: dict[str, str] | None = None) -> Path:
    """Write tensors; names listed in `bf16` are stored as BF16."""
    header: dict[str, dict] = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs = []
    offset = 0
    for name, array in tensors.items():
        if name in bf16:
            blob, dtype = f32_to_bf16_bits(array).tobytes(), "BF16"
        else:
            arr = np.ascontiguousarray(array)
            blob, dtype = arr.tobytes(), DTYPE_NAMES[arr.dtype.str]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with Path(path).open("wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for blob in blobs:
            out.write(blob)
    return Path(path)
