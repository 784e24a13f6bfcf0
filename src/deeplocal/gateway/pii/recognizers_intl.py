"""Recognizers for e-mail, IP, US SSN, payment cards, IBAN, passports, English names and US addresses."""

from __future__ import annotations

import re

from deeplocal.gateway.pii import checksums
from deeplocal.gateway.pii.types import (
    ADDRESS, CREDIT_CARD, EMAIL_ADDRESS, IBAN_CODE, IP_ADDRESS, NOT_AFTER_ALNUM as NA,
    NOT_BEFORE_ALNUM as NB, PASSPORT, PERSON, US_SSN, EntityRecognizer, Pattern,
)

# Common given names that are not also everyday words or place names (no May, Will, Grace, Jordan).
FIRST_NAMES = (
    "James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew "
    "Anthony Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason "
    "Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel "
    "Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas "
    "Zachary Peter Kyle Noah Ethan Jeremy Walter Christian Keith Roger Terry Sean Gerald Carl Harold "
    "Dylan Arthur Lawrence Jesse Bryan Bruce Gabriel Logan Alan Juan Albert Elijah Wayne Randy Vincent "
    "Liam Oliver Lucas Mason Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen "
    "Lisa Nancy Betty Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah "
    "Stephanie Rebecca Sharon Laura Cynthia Dorothy Amy Kathleen Angela Shirley Emma Brenda Pamela Nicole "
    "Anna Samantha Katherine Christine Debra Rachel Carolyn Janet Maria Olivia Heather Helen Catherine "
    "Diane Julie Joyce Lauren Kelly Christina Ruth Joan Judith Evelyn Hannah Andrea Megan Cheryl "
    "Jacqueline Teresa Abigail Sophia Martha Sara Gloria Janice Kathryn Isabella Judy Julia Alice Sophie "
    "Chloe Mia Ella Natalie Alexandra Hans Klaus Pierre Marie Giulia Marco Carlos Miguel Ahmed Mohammed "
    "Fatima Priya Raj Hiroshi Yuki Kenji Olga Ivan Dmitri"
).split()
# Pinyin surnames that are not English words (no He, Ma, Long, Fan, Tan), for "Zhang Wei" style names.
PINYIN_SURNAMES = (
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Zhu Hu Guo Lin Gao Luo Zheng Liang Xie Song "
    "Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Pan Yuan Cai Jiang Yu Du Ye Cheng Wei Su Lu Ding Ren "
    "Shen Yao Cui Zhong Jin Shi Liao Jia Xia Fu Zou Meng Xiong Qin Qiu Yin Xue Yan Duan Lei Hou Tao Ouyang"
).split()
_PINYIN_SYLLABLE = (r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
                    r"(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|"
                    r"ua|uo|ui|ue|er|a|o|e|i|u|v)")
_GIVEN_PINYIN = re.compile(rf"(?:{_PINYIN_SYLLABLE}){{1,2}}")
_NOT_A_NAME = r"(?!(?:Sir|Madam|Team|All|Customer|Friends|Colleagues|Hiring|Manager|Support|Valued)\b)"
_CAP_WORD = r"[A-Z][a-z]+"
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
           r"Terrace|Parkway|Pkwy|Highway|Hwy|Square|Sq)")


def _pinyin_name_valid(value: str) -> bool:
    parts = value.split()
    return len(parts) == 2 and _GIVEN_PINYIN.fullmatch(parts[1].lower()) is not None


def _email() -> EntityRecognizer:
    pat = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}" + NB
    return EntityRecognizer(EMAIL_ADDRESS, (Pattern("email", pat, 0.95),), needs="@")


def _ip() -> EntityRecognizer:
    v4 = r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"
    v6 = r"(?<![0-9A-Fa-f:])(?=[0-9A-Fa-f:]*[0-9A-Fa-f])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])"
    return EntityRecognizer(
        IP_ADDRESS, (Pattern("ipv4", v4, 0.6), Pattern("ipv6", v6, 0.6)), validate=checksums.ip_valid,
        context=("ip", "地址", "address", "host", "server", "服务器"), context_boost=0.3, needs="digit")


def _us_ssn() -> tuple[EntityRecognizer, ...]:
    sep = NA + r"\d{3}([- ])\d{2}\1\d{4}" + NB
    bare = NA + r"\d{9}" + NB
    ctx = ("ssn", "social security", "社会安全号", "社保号")
    return (
        EntityRecognizer(US_SSN, (Pattern("ssn_separated", sep, 0.6),), name="us_ssn_recognizer",
                         validate=checksums.us_ssn_valid, context=ctx, context_boost=0.3, needs="digit"),
        EntityRecognizer(US_SSN, (Pattern("ssn_bare", bare, 0.2),), name="us_ssn_bare_recognizer",
                         validate=checksums.us_ssn_valid, context=ctx, context_boost=0.5, needs="digit"),
    )


def _credit_card() -> EntityRecognizer:
    pat = NA + r"\d(?:[ -]?\d){11,18}" + NB
    return EntityRecognizer(CREDIT_CARD, (Pattern("card", pat, 0.9),), validate=checksums.card_brand_valid,
                            needs="digit")


def _iban_trim(candidate: str) -> int:
    """Longest prefix (cut at a group boundary) that is a valid IBAN, for matches that ran on."""
    for end in range(len(candidate), 14, -1):
        if (end == len(candidate) or candidate[end] == " ") and checksums.iban_valid(candidate[:end]):
            return end
    return 0


def _iban() -> EntityRecognizer:
    pat = NA + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + NB
    return EntityRecognizer(IBAN_CODE, (Pattern("iban", pat, 0.95),), trim=_iban_trim, needs="upper")


def _passport_with_context() -> EntityRecognizer:
    pat = NA + r"(?:[A-Z]{1,2}\d{6,9}|\d{9})" + NB
    return EntityRecognizer(
        PASSPORT, (Pattern("passport_number", pat, 0.1),), name="passport_context_recognizer",
        context=("passport", "护照", "passport no", "travel document"), context_boost=0.45,
        context_window=30, needs="digit")


def _en_person() -> tuple[EntityRecognizer, ...]:
    name = rf"{_CAP_WORD}(?:[ -]{_CAP_WORD}){{0,2}}"
    title = rf"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam)\.?\s+{_NOT_A_NAME}(?P<v>{name})"
    cue = (r"(?<![A-Za-z])(?i:my name is|my name's|name\s*:|named|dear|signed|regards,|sincerely,|"
           rf"patient|contact person:?|cardholder:?|employee)\s+{_NOT_A_NAME}(?P<v>{name})")
    dictionary = rf"(?<![A-Za-z])(?P<v>(?:{'|'.join(FIRST_NAMES)})\s+(?:[A-Z]\.\s+)?{_CAP_WORD}(?:-{_CAP_WORD})?)(?![A-Za-z])"
    pinyin = rf"(?<![A-Za-z])(?P<v>(?:{'|'.join(PINYIN_SURNAMES)}) [A-Z][a-z]{{1,11}})(?![A-Za-z])"
    return (
        EntityRecognizer(PERSON, (Pattern("en_title_name", title, 0.75),), name="en_person_title",
                         supported_language="en", needs="upper"),
        EntityRecognizer(PERSON, (Pattern("en_cue_name", cue, 0.7),), name="en_person_cue",
                         supported_language="en", needs="upper"),
        EntityRecognizer(PERSON, (Pattern("en_dictionary_name", dictionary, 0.6),),
                         name="en_person_dictionary", supported_language="en", needs="upper"),
        EntityRecognizer(PERSON, (Pattern("pinyin_name", pinyin, 0.55),), name="en_person_pinyin",
                         supported_language="en", validate=_pinyin_name_valid, needs="upper"),
    )


def _us_address() -> EntityRecognizer:
    pat = (rf"{NA}\d{{1,6}}\s+(?:{_CAP_WORD}\s+){{1,3}}{_STREET}\b\.?"
           r"(?:,?\s+(?:Apt|Suite|Unit|#)\.?\s*[A-Za-z0-9-]+)?"
           rf"(?:,\s*{_CAP_WORD}(?:\s{_CAP_WORD})?(?:,\s*[A-Z]{{2}})?(?:\s+\d{{5}}(?:-\d{{4}})?)?)?")
    return EntityRecognizer(ADDRESS, (Pattern("us_street_address", pat, 0.8),), name="us_address",
                            supported_language="en", needs="digit")


def international_recognizers(*, names: bool = True, addresses: bool = True) -> tuple[EntityRecognizer, ...]:
    out: tuple[EntityRecognizer, ...] = (_email(), _ip(), *_us_ssn(), _credit_card(), _iban(),
                                         _passport_with_context())
    if names:
        out += _en_person()
    if addresses:
        out += (_us_address(),)
    return out
