"""Read vLLM's Prometheus `/metrics` into our `BackendStats`, so routing sees vLLM like any backend."""

from __future__ import annotations

from dataclasses import dataclass, replace

from prometheus_client.parser import text_string_to_metric_families

from deeplocal.engine.types import BackendStats

# Sample names, newest vLLM spelling first; older releases used the `gpu_` ones.
RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREEMPTIONS = ("vllm:num_preemptions_total",)
PROMPT_TOKENS = ("vllm:prompt_tokens_total",)
GENERATION_TOKENS = ("vllm:generation_tokens_total",)
CACHE_CONFIG = "vllm:cache_config_info"

# When vLLM does not say how many KV blocks it has, kv usage is kept at per-mille resolution.
KV_SCALE_WITHOUT_BLOCKS = 1000


@dataclass(frozen=True, slots=True)
class VllmMetrics:
    """One scrape, summed over vLLM's engines (data-parallel ranks); kv usage is the worst engine's."""

    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0           # 0..1
    kv_blocks: int | None = None    # from cache_config_info, when present
    prefix_queries: int = 0         # tokens looked up in the prefix cache
    prefix_hits: int = 0            # of which found
    preemptions: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    seen: bool = False              # any vLLM sample at all


def parse_metrics(text: str) -> VllmMetrics:
    """Parse the text exposition format; unknown and malformed-but-parsable samples are ignored."""
    sums: dict[str, float] = {}
    maxes: dict[str, float] = {}
    blocks: int | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith("vllm:"):
                continue
            if name == CACHE_CONFIG:
                blocks = _blocks(sample.labels) or blocks
                continue
            sums[name] = sums.get(name, 0.0) + sample.value
            maxes[name] = max(maxes.get(name, 0.0), sample.value)
    return VllmMetrics(
        running=int(_first(sums, RUNNING)),
        waiting=int(_first(sums, WAITING)),
        kv_usage=min(1.0, max(0.0, _first(maxes, KV_USAGE))),
        kv_blocks=blocks,
        prefix_queries=int(_first(sums, PREFIX_QUERIES)),
        prefix_hits=int(_first(sums, PREFIX_HITS)),
        preemptions=int(_first(sums, PREEMPTIONS)),
        prompt_tokens=int(_first(sums, PROMPT_TOKENS)),
        generation_tokens=int(_first(sums, GENERATION_TOKENS)),
        seen=bool(sums) or blocks is not None,
    )


def _first(values: dict[str, float], names: tuple[str, ...]) -> float:
    for name in names:
        if name in values:
            return values[name]
    return 0.0


def _blocks(labels: dict[str, str]) -> int | None:
    for key in ("num_gpu_blocks", "num_cpu_blocks"):
        raw = labels.get(key)
        if raw and raw.isdigit() and int(raw) > 0:
            return int(raw)
    return None


def _rate(now_value: int, then_value: int, dt: float) -> float:
    if dt <= 0 or now_value < then_value:   # a counter going down: the child restarted
        return 0.0
    return (now_value - then_value) / dt


def to_backend_stats(
    cur: VllmMetrics, *, prev: VllmMetrics | None = None, dt_s: float = 0.0, healthy: bool = True
) -> BackendStats:
    """`BackendStats` from one scrape; token rates from the previous scrape `dt_s` seconds before."""
    kv_total = cur.kv_blocks or KV_SCALE_WITHOUT_BLOCKS
    return BackendStats(
        waiting=cur.waiting,
        running=cur.running,
        kv_used=round(cur.kv_usage * kv_total),
        kv_total=kv_total,
        prefix_hit_tokens=cur.prefix_hits,
        prefix_query_tokens=cur.prefix_queries,
        preemptions=cur.preemptions,
        prompt_tokens_total=cur.prompt_tokens,
        generation_tokens_total=cur.generation_tokens,
        prompt_tokens_per_s=_rate(cur.prompt_tokens, prev.prompt_tokens, dt_s) if prev else 0.0,
        generation_tokens_per_s=(
            _rate(cur.generation_tokens, prev.generation_tokens, dt_s) if prev else 0.0),
        healthy=healthy,
    )


class MetricsTracker:
    """Keeps the previous scrape so that each new one yields rates as well as levels."""

    def __init__(self) -> None:
        self._prev: tuple[VllmMetrics, float] | None = None
        self.latest = BackendStats(healthy=False)

    def update(self, text: str, *, now: float, healthy: bool = True) -> BackendStats:
        cur = parse_metrics(text)
        prev, then = self._prev if self._prev else (None, now)
        self.latest = to_backend_stats(cur, prev=prev, dt_s=now - then, healthy=healthy)
        self._prev = (cur, now)
        return self.latest

    def mark(self, *, healthy: bool) -> BackendStats:
        """Keep the last levels but change health (the child went down or came back)."""
        self.latest = replace(self.latest, healthy=healthy)
        return self.latest
