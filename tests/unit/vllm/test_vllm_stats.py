"""vLLM /metrics text -> BackendStats."""

from __future__ import annotations

import pytest

from deeplocal.engine.vllm.stats import MetricsTracker, parse_metrics, to_backend_stats

SCRAPE = """\
# HELP vllm:cache_config_info Information of the LLMCache
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="2000"} 1.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="ds"} 3.0
vllm:num_requests_running{engine="1",model_name="ds"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="ds"} 4.0
vllm:num_requests_waiting{engine="1",model_name="ds"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="ds"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="ds"} 0.5
# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="ds"} 1000.0
vllm:prefix_cache_queries_created{engine="0",model_name="ds"} 1.7e9
# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="ds"} 600.0
# HELP vllm:num_preemptions Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions counter
vllm:num_preemptions_total{engine="0",model_name="ds"} 7.0
# HELP vllm:prompt_tokens Number of prefill tokens processed.
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{engine="0",model_name="ds"} 5000.0
# HELP vllm:generation_tokens Number of generation tokens processed.
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{engine="0",model_name="ds"} 900.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="ds"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="ds"} 12.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="ds"} 12.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="ds"} 1.5
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 999.0
"""

OLD_NAMES = """\
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="ds"} 0.125
# TYPE vllm:gpu_prefix_cache_queries counter
vllm:gpu_prefix_cache_queries_total{model_name="ds"} 10.0
# TYPE vllm:gpu_prefix_cache_hits counter
vllm:gpu_prefix_cache_hits_total{model_name="ds"} 4.0
"""


def test_levels_are_summed_over_engines_and_kv_is_the_worst_engine():
    m = parse_metrics(SCRAPE)
    assert (m.running, m.waiting) == (5, 4)
    assert m.kv_usage == 0.5 and m.kv_blocks == 2000
    assert (m.prefix_queries, m.prefix_hits, m.preemptions) == (1000, 600, 7)
    assert (m.prompt_tokens, m.generation_tokens) == (5000, 900)
    assert m.seen


def test_backend_stats_use_kv_blocks_and_prefix_hit_rate():
    stats = to_backend_stats(parse_metrics(SCRAPE))
    assert (stats.kv_used, stats.kv_total) == (1000, 2000)
    assert stats.kv_usage == 0.5
    assert stats.prefix_hit_rate == pytest.approx(0.6)
    assert stats.healthy and stats.running == 5 and stats.waiting == 4


def test_older_gpu_prefixed_names_are_understood_and_kv_falls_back_to_per_mille():
    stats = to_backend_stats(parse_metrics(OLD_NAMES))
    assert (stats.kv_used, stats.kv_total) == (125, 1000)
    assert (stats.prefix_query_tokens, stats.prefix_hit_tokens) == (10, 4)


def test_empty_or_foreign_text_is_all_zero_and_not_seen():
    assert not parse_metrics("").seen
    assert parse_metrics("# TYPE up gauge\nup 1\n") == parse_metrics("")


def test_tracker_derives_token_rates_and_survives_a_counter_reset():
    tracker = MetricsTracker()
    first = tracker.update(SCRAPE, now=100.0)
    assert first.generation_tokens_per_s == 0.0
    later = SCRAPE.replace("generation_tokens_total{engine=\"0\",model_name=\"ds\"} 900.0",
                           "generation_tokens_total{engine=\"0\",model_name=\"ds\"} 1100.0")
    second = tracker.update(later, now=102.0)
    assert second.generation_tokens_per_s == pytest.approx(100.0)
    assert second.prompt_tokens_per_s == 0.0
    restarted = tracker.update(OLD_NAMES, now=103.0)  # counters went to zero: a new child
    assert restarted.generation_tokens_per_s == 0.0
    assert not tracker.mark(healthy=False).healthy
