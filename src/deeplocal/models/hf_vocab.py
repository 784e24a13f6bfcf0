"""Carry a Hugging Face BPE tokenizer (tokenizer.json) and its chat template into GGUF metadata.

The token list and types are ours; merges, special token ids and the chat template come from the
`gguf` package's SpecialVocab. llama.cpp picks its pre-tokenizer by name (`tokenizer.ggml.pre`); we
recognise the name from the pre-tokenizer that tokenizer.json declares, or take it from the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deeplocal.models.errors import InvalidModelFile, UnsupportedArchitecture

KNOWN_PRE = ("llama-bpe", "qwen2", "deepseek-r1-qwen", "smollm", "gpt-2", "default")


@dataclass(frozen=True, slots=True)
class BpeTokens:
    tokens: list[str]
    types: list[int]  # gguf.TokenType values
    pre: str


def _pretokenizers(tokenizer: dict) -> list[dict]:
    pre = tokenizer.get("pre_tokenizer") or {}
    return list(pre.get("pretokenizers", [])) if pre.get("type") == "Sequence" else [pre]


def detect_pre(tokenizer: dict) -> str | None:
    """The llama.cpp pre-tokenizer name matching tokenizer.json's pre_tokenizer, or None."""
    parts = _pretokenizers(tokenizer)
    regexes = [p.get("pattern", {}).get("Regex", "") for p in parts if p.get("type") == "Split"]
    kinds = [p.get("type") for p in parts]
    for regex in regexes:
        if "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in regex and r"\p{N}{1,3}" in regex:
            return "llama-bpe"
        if "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in regex and r"\p{N}|" in regex:
            return "qwen2"
    byte_level = [p for p in parts if p.get("type") == "ByteLevel"]
    if byte_level and not regexes and byte_level[0].get("use_regex", True):
        if any(p.get("type") == "Digits" and p.get("individual_digits") for p in parts):
            return "smollm"
        if kinds == ["ByteLevel"]:
            return "gpt-2"
    return None


def read_bpe_tokens(folder: Path, *, vocab_size: int, pre: str | None = None) -> BpeTokens:
    import gguf

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise UnsupportedArchitecture(f"{folder}: no tokenizer.json; only byte-level BPE tokenizers "
                                      "(Llama 3, Qwen2, DeepSeek-R1-Distill, SmolLM) are converted")
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    model = tokenizer.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise UnsupportedArchitecture(f"{path}: tokenizer type {model.get('type')} (byte_fallback="
                                      f"{model.get('byte_fallback')}) is not a byte-level BPE")
    pre = pre or detect_pre(tokenizer)
    if pre is None:
        raise UnsupportedArchitecture(f"{path}: cannot tell llama.cpp's pre-tokenizer from tokenizer.json; "
                                      f"pass --pre with one of {', '.join(KNOWN_PRE)}")
    by_id: dict[int, str] = {int(i): t for t, i in model["vocab"].items()}
    special: dict[int, bool] = {}
    for added in tokenizer.get("added_tokens", []):
        by_id[int(added["id"])] = added["content"]
        special[int(added["id"])] = bool(added.get("special"))
    size = max(vocab_size, max(by_id) + 1)
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in special:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if special[i] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    return BpeTokens(tokens=tokens, types=[int(t) for t in types], pre=pre)


def add_tokenizer(writer, folder: Path, *, vocab_size: int, pre: str | None = None) -> BpeTokens:
    """Write tokens, types, merges, special ids, add-bos flags and the chat template."""
    import gguf

    bpe = read_bpe_tokens(folder, vocab_size=vocab_size, pre=pre)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(bpe.pre)
    writer.add_token_list(bpe.tokens)
    writer.add_token_types(bpe.types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(bpe.tokens))
    if not special.merges:
        raise InvalidModelFile(f"{folder}: tokenizer.json has no BPE merges")
    special.add_to_gguf(writer, quiet=True)
    return bpe
