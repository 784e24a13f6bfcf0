"""Measure a GGUF model: perplexity on shipped held-out text (en + zh), multiple-choice accuracy,
file size, resident memory, KV bytes per token, prefill and decode tokens/s. llama.cpp low-level API."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from deeplocal.models.errors import ModelError
from deeplocal.models.gguf_meta import read_gguf_info
from deeplocal.models.llama_lowlevel import LlamaRunner, log_softmax, quiet_llama

EVAL_FILES = ("heldout_en.txt", "heldout_zh.txt", "mc.jsonl")


@dataclass(frozen=True, slots=True)
class EvalConfig:
    n_ctx: int = 512
    n_threads: int = 1
    decode_tokens: int = 32
    languages: tuple[str, ...] = ("en", "zh")
    mc: bool = True


@dataclass(frozen=True, slots=True)
class EvalReport:
    model: str
    quantization: str
    file_bytes: int
    rss_bytes: int  # resident memory added by loading the model and decoding (KV cache included)
    kv_bytes_per_token: int | None  # F16 cache
    perplexity: dict[str, float]
    ppl_tokens: dict[str, int]
    accuracy: float | None
    accuracy_items: int
    prefill_tps: float
    decode_tps: float
    n_ctx: int
    n_threads: int
    eval_set: str  # sha256 prefix of the shipped data: reports are comparable only on the same set
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        return cls(**json.loads(text))


def data_text(name: str) -> str:
    return resources.files("deeplocal.models").joinpath("data", name).read_text(encoding="utf-8")


def eval_set_id() -> str:
    digest = hashlib.sha256()
    for name in EVAL_FILES:
        digest.update(data_text(name).encode())
    return digest.hexdigest()[:12]


def windows(n_tokens: int, n_ctx: int) -> list[tuple[int, int, int]]:
    """(start, first scored, end) windows of at most n_ctx tokens: every token after the first half
    window is scored exactly once, each with at least n_ctx/2 tokens of context (sliding by n_ctx/2)."""
    chunk = min(n_ctx, n_tokens)
    half = chunk // 2
    starts = list(range(0, n_tokens - chunk + 1, max(chunk - half, 1)))
    if starts[-1] != n_tokens - chunk:
        starts.append(n_tokens - chunk)
    out, scored_until = [], half
    for start in starts:
        end = start + chunk
        out.append((start, max(start + half, scored_until), end))
        scored_until = end
    return out


def perplexity(runner: LlamaRunner, tokens: list[int], n_ctx: int) -> tuple[float, int, float, int]:
    """Perplexity over sliding windows (see `windows`).
    Returns (ppl, tokens scored, seconds decoding, tokens decoded)."""
    nll, scored, decoded, seconds = 0.0, 0, 0, 0.0
    for start, first, end in windows(len(tokens), n_ctx):
        part = tokens[start:end]
        runner.reset()
        t0 = time.perf_counter()
        logits = runner.decode(part, start=0, all_logits=True)
        seconds += time.perf_counter() - t0
        decoded += len(part)
        rows = logits[first - start - 1: end - start - 1]
        targets = np.asarray(part[first - start:])
        nll -= float(log_softmax(rows)[np.arange(len(targets)), targets].sum())
        scored += len(targets)
    if scored == 0:
        raise ModelError("the evaluation text is too short for this context size")
    return float(np.exp(nll / scored)), scored, seconds, decoded


def mc_accuracy(runner: LlamaRunner) -> tuple[float, int]:
    """Pick the choice with the highest summed log-probability after the question (prompt cached)."""
    correct = total = 0
    for line in data_text("mc.jsonl").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        zh = item["lang"] == "zh"
        prompt = runner.bos() + runner.tokenize(
            f"问题：{item['question']}\n答案：" if zh else f"Question: {item['question']}\nAnswer:")
        runner.reset()
        last = runner.decode(prompt, start=0)[-1]
        scores = []
        for choice in item["choices"]:
            cont = runner.tokenize(choice if zh else f" {choice}")
            runner.reset(keep=len(prompt))
            logits = np.vstack([last[None, :], runner.decode(cont[:-1], start=len(prompt), all_logits=True)]) \
                if len(cont) > 1 else last[None, :]
            logp = log_softmax(logits)
            scores.append(float(logp[np.arange(len(cont)), cont].sum()))
        correct += int(int(np.argmax(scores)) == item["answer"])
        total += 1
    return correct / total, total


def decode_speed(runner: LlamaRunner, n_tokens: int) -> float:
    prompt = runner.bos() + runner.tokenize("The lighthouse keeper wrote in the log that")
    runner.reset()
    logits = runner.decode(prompt, start=0)[-1]
    t0 = time.perf_counter()
    pos = len(prompt)
    for _ in range(n_tokens):
        token = int(np.argmax(logits))
        logits = runner.decode([token], start=pos)[-1]
        pos += 1
    return n_tokens / (time.perf_counter() - t0)


def _rss(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def evaluate_file(path: Path, *, model: str, config: EvalConfig | None = None) -> EvalReport:
    """Run every measurement in this process (see `evaluate_isolated` for a clean RSS figure)."""
    config = config or EvalConfig()
    started = time.perf_counter()
    info = read_gguf_info(path)
    base_rss = _rss("VmRSS")
    ppl, counts, prefill_s, prefill_n = {}, {}, 0.0, 0
    with quiet_llama(), LlamaRunner(path, n_ctx=config.n_ctx, n_batch=config.n_ctx,
                                    n_threads=config.n_threads) as runner:
        decode_tps = decode_speed(runner, config.decode_tokens)
        rss = _rss("VmRSS") - base_rss  # weights touched + KV cache + compute buffers, before the
        # evaluation's own large logits arrays
        accuracy, items = mc_accuracy(runner) if config.mc else (None, 0)
        for lang in config.languages:
            tokens = runner.bos() + runner.tokenize(data_text(f"heldout_{lang}.txt"))
            ppl[lang], counts[lang], seconds, decoded = perplexity(runner, tokens, config.n_ctx)
            prefill_s += seconds
            prefill_n += decoded
    return EvalReport(
        model=model, quantization=info.quantization, file_bytes=info.size_bytes, rss_bytes=max(rss, 0),
        kv_bytes_per_token=info.kv_bytes_per_token(), perplexity=ppl, ppl_tokens=counts,
        accuracy=accuracy, accuracy_items=items, prefill_tps=prefill_n / prefill_s if prefill_s else 0.0,
        decode_tps=decode_tps, n_ctx=config.n_ctx, n_threads=config.n_threads, eval_set=eval_set_id(),
        seconds=time.perf_counter() - started,
    )


def _child(path: str, model: str, config: EvalConfig, queue: multiprocessing.Queue) -> None:
    try:
        queue.put(("ok", evaluate_file(Path(path), model=model, config=config).to_json()))
    except Exception as exc:  # noqa: BLE001  (sent back to the parent, re-raised there as a typed error)
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def evaluate_isolated(path: Path, *, model: str, config: EvalConfig | None = None,
                      timeout_s: float = 3600) -> EvalReport:
    """Evaluate in a fresh (spawned) process so resident memory is the model's alone."""
    config = config or EvalConfig()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(str(path), model, config, queue), daemon=True)
    proc.start()
    try:
        status, payload = queue.get(timeout=timeout_s)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    if status != "ok":
        raise ModelError(f"evaluation of {model} failed: {payload}")
    return EvalReport.from_json(payload)
