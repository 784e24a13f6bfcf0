"""Prompt sources and length specs."""

from __future__ import annotations

import json
import random

import pytest

from deeplocal.bench.datasets import DatasetError, LengthSpec, bundled_prompts, load_prompts


def test_bundled_prompts_have_both_languages():
    en, zh = bundled_prompts("en"), bundled_prompts("zh")
    assert len(en) >= 20 and len(zh) >= 20
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in p) for p in zh)
    assert len(bundled_prompts()) == len(en) + len(zh)


def test_length_spec():
    assert LengthSpec.parse("128") == LengthSpec(128, 128)
    spec = LengthSpec.parse("10-20")
    rng = random.Random(0)
    samples = {spec.sample(rng) for _ in range(200)}
    assert min(samples) == 10 and max(samples) == 20
    for bad in ("0", "20-10", "x", "5-"):
        with pytest.raises(DatasetError):
            LengthSpec.parse(bad)


def test_random_dataset_is_seeded_and_sized():
    a = load_prompts("random", count=3, output_len=LengthSpec(8, 8), input_len=LengthSpec(50, 50), seed=1)
    b = load_prompts("random", count=3, output_len=LengthSpec(8, 8), input_len=LengthSpec(50, 50), seed=1)
    assert a == b and all(len(p.text.split()) == 50 and p.output_len == 8 for p in a)
    assert len({p.text for p in a}) == 3


def test_cycles_through_a_small_pool():
    prompts = load_prompts("bundled-zh", count=70, output_len=LengthSpec(4, 4))
    assert len(prompts) == 70 and len({p.text for p in prompts}) == len(bundled_prompts("zh"))


@pytest.mark.parametrize("shape", ["json", "jsonl"])
def test_sharegpt_files(tmp_path, shape):
    items = [
        {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "hello?"},
                           {"from": "gpt", "value": "hi"}]},
        {"messages": [{"role": "user", "content": "你好"}]},
        {"conversations": [{"from": "gpt", "value": "no human turn"}]},
    ]
    path = tmp_path / f"d.{shape}"
    path.write_text(json.dumps(items) if shape == "json" else "\n".join(json.dumps(i) for i in items))
    prompts = load_prompts(str(path), count=4, output_len=LengthSpec(16, 16))
    assert {p.text for p in prompts} == {"hello?", "你好"}


def test_bad_datasets(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_prompts("nope", count=1, output_len=LengthSpec(1, 1))
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"conversations": []}\n')
    with pytest.raises(DatasetError, match="no conversation"):
        load_prompts(str(empty), count=1, output_len=LengthSpec(1, 1))
    broken = tmp_path / "b.json"
    broken.write_text("[{")
    with pytest.raises(DatasetError, match="neither"):
        load_prompts(str(broken), count=1, output_len=LengthSpec(1, 1))
