"""Read a Hugging Face model folder (config.json + *.safetensors) without torch."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from deeplocal.models.errors import InvalidModelFile

# Files worth keeping from a Hugging Face repo for serving or conversion.
KEEP_SUFFIXES = (".json", ".safetensors", ".model", ".txt", ".jinja", ".tiktoken", ".py")
SKIP_NAMES = {"training_args.bin"}


@dataclass(frozen=True, slots=True)
class SafetensorsInfo:
    architecture: str  # config.json model_type, e.g. "llama", "qwen2"
    hf_architecture: str | None  # e.g. "LlamaForCausalLM"
    parameters: int
    dtype: str
    quantization: str
    context_length: int | None
    weight_files: tuple[str, ...]


def read_safetensors_header(path: Path) -> dict:
    """The JSON header of a .safetensors file: {name: {dtype, shape, data_offsets}}, checked for truncation."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise InvalidModelFile(f"{path}: truncated safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > min(size - 8, 100 * 1024 * 1024):
            raise InvalidModelFile(f"{path}: bad safetensors header length {length}")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidModelFile(f"{path}: safetensors header is not JSON: {exc}") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end > size:
        raise InvalidModelFile(f"{path}: truncated safetensors: needs {8 + length + end} bytes, has {size}")
    return header


def read_config(folder: Path) -> dict:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InvalidModelFile(
            f"{folder}: no config.json: not a Hugging Face model folder "
            "(expected config.json, tokenizer files and *.safetensors weights)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidModelFile(f"{config_path}: not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidModelFile(f"{config_path}: the top level must be an object")
    return config


def quantization_of(config: dict, dtype: str) -> str:
    """'fp8' for an offline FP8 checkpoint (vLLM reads it as is), else the weight dtype."""
    qc = config.get("quantization_config") or {}
    method = str(qc.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8"
    if method == "compressed-tensors" and "float" in json.dumps(qc).lower():
        return "fp8"
    return method or dtype


def read_hf_folder(folder: Path) -> SafetensorsInfo:
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidModelFile(f"{folder}: not a folder")
    config = read_config(folder)
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    if not weights:
        raise InvalidModelFile(f"{folder}: no *.safetensors weights (PyTorch .bin files are not supported)")
    parameters = 0
    dtypes: dict[str, int] = {}
    for name in weights:
        header = read_safetensors_header(folder / name)
        for key, value in header.items():
            if key == "__metadata__":
                continue
            count = math.prod(value["shape"])
            parameters += count
            dtypes[value["dtype"]] = dtypes.get(value["dtype"], 0) + count
    dtype = max(dtypes, key=dtypes.__getitem__) if dtypes else str(config.get("torch_dtype", "unknown"))
    archs = config.get("architectures") or [None]
    return SafetensorsInfo(
        architecture=str(config.get("model_type", "unknown")),
        hf_architecture=archs[0],
        parameters=parameters,
        dtype=dtype,
        quantization=quantization_of(config, dtype),
        context_length=config.get("max_position_embeddings"),
        weight_files=tuple(weights),
    )


def files_to_keep(folder: Path) -> list[Path]:
    """The files of a HF folder that a server or converter needs (skips .bin, images, READMEs are kept)."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in SKIP_NAMES and (
            path.suffix in KEEP_SUFFIXES or path.name in {"README.md", "LICENSE"}
        ):
            out.append(path)
    return out
