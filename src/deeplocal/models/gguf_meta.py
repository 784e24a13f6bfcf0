"""Read what a GGUF file says about itself (with the `gguf` package), and refuse broken files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from deeplocal.models.errors import InvalidModelFile

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    architecture: str
    name: str | None
    license: str | None
    quantization: str  # "Q4_K_M", "F16", ...
    file_type: int | None
    parameters: int
    size_bytes: int
    context_length: int | None
    n_layers: int | None
    n_embd: int | None
    n_head: int | None
    n_head_kv: int | None
    head_dim: int | None
    vocab_size: int | None
    has_chat_template: bool
    tensor_count: int

    def kv_bytes_per_token(self, *, bytes_per_element: int = 2) -> int | None:
        """K and V for one token across all layers, at the given cache element size (F16 = 2)."""
        if not (self.n_layers and self.n_head_kv and self.head_dim):
            return None
        return 2 * self.n_layers * self.n_head_kv * self.head_dim * bytes_per_element


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _scalar(reader, key: str):
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _quantization_label(file_type: int | None, tensor_types: Counter) -> str:
    from gguf import GGMLQuantizationType, LlamaFileType

    if file_type is not None:
        try:
            name = LlamaFileType(file_type).name
        except ValueError:
            name = ""
        if name.startswith("MOSTLY_"):
            return name.removeprefix("MOSTLY_")
        if name == "ALL_F32":
            return "F32"
    if not tensor_types:
        return "unknown"
    return GGMLQuantizationType(tensor_types.most_common(1)[0][0]).name


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header and tensor table; raise InvalidModelFile for anything truncated or malformed."""
    path = Path(path)
    if not path.is_file():
        raise InvalidModelFile(f"{path}: not a file")
    if not is_gguf(path):
        raise InvalidModelFile(f"{path}: not a GGUF file (the first bytes are not 'GGUF')")
    from gguf import GGUFReader

    size = path.stat().st_size
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct/numpy errors on bad bytes
        raise InvalidModelFile(f"{path}: unreadable GGUF header ({type(exc).__name__}: {exc}); "
                               "the file is probably truncated or corrupt") from exc
    end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=reader.data_offset)
    if end > size:
        raise InvalidModelFile(
            f"{path}: truncated GGUF: the tensors need {end} bytes but the file has {size}"
        )
    arch = _scalar(reader, "general.architecture")
    if not arch:
        raise InvalidModelFile(f"{path}: GGUF has no general.architecture")
    n_head = _scalar(reader, f"{arch}.attention.head_count")
    n_embd = _scalar(reader, f"{arch}.embedding_length")
    head_dim = _scalar(reader, f"{arch}.attention.key_length") or (
        n_embd // n_head if isinstance(n_head, int) and n_head and n_embd else None
    )
    matrix_types = Counter(int(t.tensor_type) for t in reader.tensors if len(t.shape) >= 2)
    file_type = _scalar(reader, "general.file_type")
    vocab = _scalar(reader, f"{arch}.vocab_size")
    if vocab is None and "tokenizer.ggml.tokens" in reader.fields:
        vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    return GGUFInfo(
        architecture=str(arch),
        name=_scalar(reader, "general.name"),
        license=_scalar(reader, "general.license"),
        quantization=_quantization_label(file_type, matrix_types),
        file_type=file_type,
        parameters=sum(int(t.n_elements) for t in reader.tensors),
        size_bytes=size,
        context_length=_scalar(reader, f"{arch}.context_length"),
        n_layers=_scalar(reader, f"{arch}.block_count"),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=_scalar(reader, f"{arch}.attention.head_count_kv") or n_head,
        head_dim=head_dim,
        vocab_size=vocab,
        has_chat_template="tokenizer.chat_template" in reader.fields,
        tensor_count=len(reader.tensors),
    )
