"""Reversible pseudonymization: placeholders out, originals back, also across streamed chunk splits."""

from __future__ import annotations

import pytest

from deeplocal.gateway.pii import PiiPolicy, PiiScanner, Pseudonymizer, StreamRestorer
from deeplocal.gateway.pii.placeholders import PlaceholderTable

CN_ID = "11010519491231002X"
MESSAGES = [
    f"你好，我叫王芳，身份证{CN_ID}，手机+86 139 1234 5678。",
    "Please email my lawyer at li.na@example.cn and charge 4111-1111-1111-1111.",
    f"再说一遍：身份证{CN_ID}，手机13912345678。",
]


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


def _fake_upstream(prompt_texts: list[str]) -> str:
    """What a remote model might answer: it repeats the placeholders it was given, in prose."""
    return ("好的，<PERSON_1>。已记录身份证 <CN_ID_1> 和手机 <CN_MOBILE_1>; "
            "I will write to <EMAIL_ADDRESS_1> and bill <CREDIT_CARD_1>. <UNKNOWN_9> stays as is.")


def test_round_trip_restores_originals(scanner: PiiScanner) -> None:
    p = Pseudonymizer(scanner, PiiPolicy.parse("*=redact"))
    sent = p.pseudonymize_all(MESSAGES)
    joined = "\n".join(sent)
    for secret in (CN_ID, "王芳", "139 1234 5678", "13912345678", "li.na@example.cn", "4111"):
        assert secret not in joined
    assert sent[0] == "你好，我叫<PERSON_1>，身份证<CN_ID_1>，手机<CN_MOBILE_1>。"
    assert sent[2] == "再说一遍：身份证<CN_ID_1>，手机<CN_MOBILE_1>。"   # same values, same placeholders
    answer = p.restore(_fake_upstream(sent))
    assert answer == ("好的，王芳。已记录身份证 11010519491231002X 和手机 +86 139 1234 5678; "
                      "I will write to li.na@example.cn and bill 4111-1111-1111-1111. <UNKNOWN_9> stays as is.")
    assert "王芳" not in repr(p) and CN_ID not in repr(p.table)


def test_policy_allow_types_pass_through(scanner: PiiScanner) -> None:
    p = Pseudonymizer(scanner, PiiPolicy())        # default: only high-risk ids are replaced
    out = p.pseudonymize(MESSAGES[1])
    assert out == "Please email my lawyer at li.na@example.cn and charge <CREDIT_CARD_1>."


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 64])
def test_stream_restorer_handles_every_split(scanner: PiiScanner, size: int) -> None:
    p = Pseudonymizer(scanner)
    p.pseudonymize_all(MESSAGES)
    upstream = _fake_upstream([])
    expected = p.restore(upstream)
    for offset in range(size):  # shift the chunk grid so every boundary falls inside some placeholder
        chunks = [upstream[:offset]] + [upstream[i:i + size] for i in range(offset, len(upstream), size)]
        r = p.restorer()
        streamed = "".join(r.feed(c) for c in chunks) + r.flush()
        assert streamed == expected


def test_stream_restorer_releases_non_placeholders_at_once() -> None:
    table = PlaceholderTable()
    table.placeholder_for("CN_ID", CN_ID)
    r = StreamRestorer(table)
    assert r.feed("a < b and <div>") == "a < b and <div>"
    assert r.feed("id: <CN_") == "id: "          # could still become a placeholder: held
    assert r.feed("ID_1> ok") == f"{CN_ID} ok"
    assert r.feed("<CN_ID") == ""
    assert r.flush() == "<CN_ID"                 # stream ended mid-placeholder: sent as it is


def test_restorer_without_findings_is_identity(scanner: PiiScanner) -> None:
    p = Pseudonymizer(scanner)
    assert p.pseudonymize("nothing here") == "nothing here"
    r = p.restorer()
    assert r.feed("<CN_ID_1>") + r.flush() == "<CN_ID_1>"
