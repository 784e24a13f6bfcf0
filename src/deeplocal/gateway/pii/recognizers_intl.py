"""Recognizers for e-mail, IP, US SSN, payment cards, IBAN, passports, English names and US addresses."""

from __future__ import annotations

import re
from typing import Any

from deeplocal.gateway.pii import checksums
from deeplocal.gateway.pii.types import (
    ADDRESS,
    CREDIT_CARD,
    DIGIT_ANCHOR,
    EMAIL_ADDRESS,
    IBAN_CODE,
    IP_ADDRESS,
    NA1,
    NB,
    PASSPORT,
    PERSON,
    US_SSN,
    EntityRecognizer,
    Pattern,
)

# Common given names that are not also everyday words or place names (no May, Will, Grace, Jordan).
FIRST_NAMES = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Donald", "Steven", "Paul", "Andrew", "Joshua",
    "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan",
    "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
    "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis", "Jerry",
    "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry", "Douglas", "Zachary", "Peter", "Kyle", "Noah",
    "Ethan", "Jeremy", "Walter", "Christian", "Keith", "Roger", "Terry", "Sean", "Gerald", "Carl", "Harold",
    "Dylan", "Arthur", "Lawrence", "Jesse", "Bryan", "Bruce", "Gabriel", "Logan", "Alan", "Juan", "Albert",
    "Elijah", "Wayne", "Randy", "Vincent", "Liam", "Oliver", "Lucas", "Mason", "Mary", "Patricia",
    "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Lisa", "Nancy",
    "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda",
    "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Dorothy", "Amy",
    "Kathleen", "Angela", "Shirley", "Emma", "Brenda", "Pamela", "Nicole", "Anna", "Samantha", "Katherine",
    "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Olivia", "Heather", "Helen", "Catherine",
    "Diane", "Julie", "Joyce", "Lauren", "Kelly", "Christina", "Ruth", "Joan", "Judith", "Evelyn", "Hannah",
    "Andrea", "Megan", "Cheryl", "Jacqueline", "Teresa", "Abigail", "Sophia", "Martha", "Sara", "Gloria",
    "Janice", "Kathryn", "Isabella", "Judy", "Julia", "Alice", "Sophie", "Chloe", "Mia", "Ella", "Natalie",
    "Alexandra", "Hans", "Klaus", "Pierre", "Marie", "Giulia", "Marco", "Carlos", "Miguel", "Ahmed",
    "Mohammed", "Fatima", "Priya", "Raj", "Hiroshi", "Yuki", "Kenji", "Olga", "Ivan", "Dmitri",
)
# Pinyin surnames that are not English words (no He, Ma, Long, Fan, Tan), for "Zhang Wei" style names.
PINYIN_SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Zhu", "Hu",
    "Guo", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang", "Han", "Feng", "Deng", "Cao",
    "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai", "Jiang", "Yu", "Du", "Ye", "Cheng", "Wei",
    "Su", "Lu", "Ding", "Ren", "Shen", "Yao", "Cui", "Zhong", "Jin", "Shi", "Liao", "Jia", "Xia", "Fu",
    "Zou", "Meng", "Xiong", "Qin", "Qiu", "Yin", "Xue", "Yan", "Duan", "Lei", "Hou", "Tao", "Ouyang",
)
_PINYIN_SYLLABLE = (r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
                    r"(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|"
                    r"ua|uo|ui|ue|er|a|o|e|i|u|v)")
_GIVEN_PINYIN = re.compile(rf"(?:{_PINYIN_SYLLABLE}){{1,2}}")
_NOT_A_NAME = r"(?!(?:Sir|Madam|Team|All|Customer|Friends|Colleagues|Hiring|Manager|Support|Valued)\b)"
_CAP_WORD = r"[A-Z][a-z]+"
_DIGITS: dict[str, Any] = {"anchor": DIGIT_ANCHOR, "window": (8, 8)}
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
           r"Terrace|Parkway|Pkwy|Highway|Hwy|Square|Sq)")


def _pinyin_name_valid(value: str) -> bool:
    parts = value.split()
    return len(parts) == 2 and _GIVEN_PINYIN.fullmatch(parts[1].lower()) is not None


def _email() -> EntityRecognizer:
    pat = r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-].)[A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}" + NB
    return EntityRecognizer(EMAIL_ADDRESS, (Pattern("email", pat, 0.95),), anchor="@", window=(64, 255))


def _ip() -> tuple[EntityRecognizer, ...]:
    v4 = r"[0-9](?<![0-9.].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\.?[0-9])"
    v6 = (r"[0-9A-Fa-f:](?<![0-9A-Fa-f:].)[0-9A-Fa-f]{0,3}:(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{1,4}"
          r"(?![0-9A-Fa-f:])")
    ctx = ("ip", "地址", "address", "host", "server", "服务器")
    return (
        EntityRecognizer(IP_ADDRESS, (Pattern("ipv4", v4, 0.6),), name="ipv4_recognizer",
                         validate=checksums.ip_valid, context=ctx, context_boost=0.3, **_DIGITS),
        EntityRecognizer(IP_ADDRESS, (Pattern("ipv6", v6, 0.6),), name="ipv6_recognizer",
                         validate=checksums.ip_valid, context=ctx, context_boost=0.3,
                         anchor=r":[0-9A-Fa-f]{0,4}:", window=(40, 40)),
    )


def _us_ssn() -> tuple[EntityRecognizer, ...]:
    sep = "[0-9]" + NA1 + r"[0-9]{2}([- ])[0-9]{2}\1[0-9]{4}" + NB
    bare = "[0-9]" + NA1 + r"[0-9]{8}" + NB
    ctx = ("ssn", "social security", "社会安全号", "社保号")
    return (
        EntityRecognizer(US_SSN, (Pattern("ssn_separated", sep, 0.6),), name="us_ssn_recognizer",
                         validate=checksums.us_ssn_valid, context=ctx, context_boost=0.3, **_DIGITS),
        EntityRecognizer(US_SSN, (Pattern("ssn_bare", bare, 0.2),), name="us_ssn_bare_recognizer",
                         validate=checksums.us_ssn_valid, context=ctx, context_boost=0.5, **_DIGITS),
    )


def _credit_card() -> EntityRecognizer:
    pat = "[0-9]" + NA1 + r"(?:[ -]?[0-9]){11,18}" + NB
    return EntityRecognizer(CREDIT_CARD, (Pattern("card", pat, 0.9),), validate=checksums.card_brand_valid,
                            **_DIGITS)


def _iban_trim(candidate: str) -> int:
    """Longest prefix (cut at a group boundary) that is a valid IBAN, for matches that ran on."""
    for end in range(len(candidate), 14, -1):
        if (end == len(candidate) or candidate[end] == " ") and checksums.iban_valid(candidate[:end]):
            return end
    return 0


def _iban() -> EntityRecognizer:
    pat = "[A-Z]" + NA1 + r"[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + NB
    return EntityRecognizer(IBAN_CODE, (Pattern("iban", pat, 0.95),), trim=_iban_trim,
                            anchor=r"[A-Z][A-Z][0-9]{2}", window=(0, 48))


def _passport_with_context() -> EntityRecognizer:
    pat = "[A-Z0-9]" + NA1 + r"(?:(?<=[A-Z])[A-Z]?[0-9]{6,9}|(?<=[0-9])[0-9]{8})" + NB
    return EntityRecognizer(
        PASSPORT, (Pattern("passport_number", pat, 0.1),), name="passport_context_recognizer",
        context=("passport", "护照", "passport no", "travel document"), context_boost=0.45,
        context_window=30, **_DIGITS)


def _en_person() -> tuple[EntityRecognizer, ...]:
    name = rf"{_CAP_WORD}(?:[ -]{_CAP_WORD}){{0,2}}"
    title = (r"[MDPS](?<![A-Za-z].)(?:(?<=M)(?:r|rs|s|iss|x|adam)|(?<=D)r|(?<=P)rof|(?<=S)ir)\.?\s+"
             rf"{_NOT_A_NAME}(?P<v>{name})")
    cue = (r"[MmNnDdSsRrPpCcEe](?<![A-Za-z].)(?i:(?<=m)y name is|(?<=m)y name's|(?<=n)ame\s*:|(?<=n)amed|"
           r"(?<=d)ear|(?<=s)igned|(?<=r)egards,|(?<=s)incerely,|(?<=p)atient|(?<=c)ontact person:?|"
           rf"(?<=c)ardholder:?|(?<=e)mployee)\s+{_NOT_A_NAME}(?P<v>{name})")
    pair = r"[A-Z](?<![A-Za-z].)[a-z]+ (?:[A-Z]\. )?[A-Z][a-z]+"
    dictionary = (rf"(?=[A-Z])(?<![A-Za-z])(?P<v>(?:{'|'.join(FIRST_NAMES)}) (?:[A-Z]\. )?{_CAP_WORD}"
                  rf"(?:-{_CAP_WORD})?)(?![A-Za-z])")
    pinyin = rf"(?=[A-Z])(?<![A-Za-z])(?P<v>(?:{'|'.join(PINYIN_SURNAMES)}) [A-Z][a-z]{{1,11}})(?![A-Za-z])"
    return (
        EntityRecognizer(PERSON, (Pattern("en_title_name", title, 0.75),), name="en_person_title",
                         supported_language="en", anchor=r"(?:Mr|Ms|Miss|Mx|Dr|Prof|Sir|Madam)", window=(0, 60)),
        EntityRecognizer(PERSON, (Pattern("en_cue_name", cue, 0.7),), name="en_person_cue",
                         supported_language="en",
                         anchor=r"(?:ame|ear|igned|egards|incerely|atient|ontact person|ardholder|mployee)",
                         window=(4, 70)),
        EntityRecognizer(PERSON, (Pattern("en_dictionary_name", dictionary, 0.6),),
                         name="en_person_dictionary", supported_language="en", anchor=pair, window=(0, 24)),
        EntityRecognizer(PERSON, (Pattern("pinyin_name", pinyin, 0.55),), name="en_person_pinyin",
                         supported_language="en", validate=_pinyin_name_valid, anchor=pair, window=(0, 24)),
    )


def _us_address() -> EntityRecognizer:
    pat = (rf"[0-9]{NA1}[0-9]{{0,5}}\s+(?:{_CAP_WORD}\s+){{1,3}}{_STREET}\b\.?"
           r"(?:,?\s+(?:Apt|Suite|Unit|#)\.?\s*[A-Za-z0-9-]+)?"
           rf"(?:,\s*{_CAP_WORD}(?:\s{_CAP_WORD})?(?:,\s*[A-Z]{{2}})?(?:\s+[0-9]{{5}}(?:-[0-9]{{4}})?)?)?")
    return EntityRecognizer(ADDRESS, (Pattern("us_street_address", pat, 0.8),), name="us_address",
                            supported_language="en", anchor=_STREET + "(?![a-z])", window=(60, 60))


def international_recognizers(*, names: bool = True, addresses: bool = True) -> tuple[EntityRecognizer, ...]:
    out: tuple[EntityRecognizer, ...] = (_email(), *_ip(), *_us_ssn(), _credit_card(), _iban(),
                                         _passport_with_context())
    if names:
        out += _en_person()
    if addresses:
        out += (_us_address(),)
    return out
