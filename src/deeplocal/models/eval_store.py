"""Evaluation results kept beside the model in the store, keyed by eval set, context and threads."""

from __future__ import annotations

from pathlib import Path

from deeplocal.models.evaluate import EvalConfig, EvalReport, eval_set_id, evaluate_isolated
from deeplocal.models.fileio import write_text_atomic
from deeplocal.models.resolve import ResolvedModel, resolve_model
from deeplocal.models.store import ModelStore


def cache_path(store: ModelStore, model_id: str, config: EvalConfig) -> Path:
    langs = "-".join(config.languages)
    return store.model_dir(model_id) / (
        f"eval-{eval_set_id()}-ctx{config.n_ctx}-t{config.n_threads}-{langs}{'' if config.mc else '-nomc'}.json")


def evaluate_model(store: ModelStore, source: str, *, config: EvalConfig | None = None,
                   use_cache: bool = True) -> EvalReport:
    """Evaluate a store model (cached in its folder) or a path (not cached)."""
    config = config or EvalConfig()
    resolved: ResolvedModel = resolve_model(source, store_dir=store.root)
    if resolved.format != "gguf":
        from deeplocal.models.errors import ModelError

        raise ModelError(f"{resolved.id} is {resolved.format}: evaluation runs GGUF models on llama.cpp; "
                         "convert it first (`deeplocal models convert`)")
    in_store = store.has(resolved.id)
    path = cache_path(store, resolved.id, config) if in_store else None
    if use_cache and path and path.is_file():
        return EvalReport.from_json(path.read_text(encoding="utf-8"))
    report = evaluate_isolated(resolved.path, model=resolved.id, config=config)
    if path:
        write_text_atomic(path, report.to_json())
    return report
