"""Regenerate labelled.jsonl: Chinese and English snippets with PII spans, and hard negatives.

    python tests/data/pii/make_labelled.py        # writes tests/data/pii/labelled.jsonl

Values are synthetic (valid checksums are computed here, independently of the scanner's code, so a
wrong validator shows up as lost recall). Templates cover the formats people type: separators,
+86, full-width digits, X check characters, names with and without cue words; hard negatives are
18-digit numbers with a wrong check character, order and tracking numbers, dates, amounts, version
strings, Luhn-failing card-like numbers. Some positives are deliberately out of reach of patterns
(names with no cue), so recall for PERSON is measured, not assumed.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("labelled.jsonl")
SLOT = re.compile(r"\{([A-Z0-9_]+)\}")

ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭林罗郑梁谢宋唐韩冯邓曹彭曾田董潘蒋蔡杜叶程苏魏吕丁沈姚卢"
ZH_GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
            "秀英", "小红", "建国", "志强", "海燕", "晓东", "雪梅", "俊杰", "子涵", "浩然", "欣怡", "宇轩", "思远"]
EN_FIRST = ["James", "Mary", "Robert", "Patricia", "Michael", "Linda", "David", "Jennifer", "Thomas", "Sarah",
            "Daniel", "Emily", "Kevin", "Laura", "Brian", "Rachel", "Olivia", "Ethan", "Sophia", "Lucas"]
EN_LAST = ["Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
           "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young"]
PINYIN = ["Zhang Wei", "Wang Fang", "Li Na", "Liu Yang", "Chen Jie", "Zhao Lei", "Huang Min", "Zhou Tao"]
ZH_PLACES = [("北京市", "朝阳区"), ("上海市", "浦东新区"), ("广东省深圳市", "南山区"), ("浙江省杭州市", "西湖区"),
             ("四川省成都市", "武侯区"), ("江苏省南京市", "鼓楼区"), ("湖北省武汉市", "洪山区"), ("广州市", "天河区")]
ZH_ROADS = ["建国路", "世纪大道", "科技园路", "文三路", "人民南路", "中山北路", "珞喻路", "天河路", "解放大街"]
EN_STREETS = ["Main Street", "Oak Avenue", "Maple Drive", "Pennsylvania Avenue", "Elm Street", "Market Street",
              "Sunset Boulevard", "Park Road"]
EN_CITIES = [("Springfield", "IL"), ("Austin", "TX"), ("Seattle", "WA"), ("Boston", "MA"), ("Denver", "CO")]
PROVINCES = [11, 12, 13, 31, 32, 33, 35, 37, 42, 44, 50, 51, 61]
W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, W)) % 11]


def cn_id(r: random.Random, *, valid: bool = True) -> str:
    first = (f"{r.choice(PROVINCES)}{r.randint(1, 99):02d}{r.randint(1, 30):02d}"
             f"{r.randint(1950, 2005)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randint(0, 999):03d}")
    good = _check(first)
    if valid:
        return first + good
    return first + r.choice([c for c in "0123456789X" if c != good])


def luhn_complete(prefix: str, length: int, r: random.Random) -> str:
    body = prefix + "".join(str(r.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def luhn_broken(prefix: str, length: int, r: random.Random) -> str:
    good = luhn_complete(prefix, length, r)
    return good[:-1] + str((int(good[-1]) + r.randint(1, 9)) % 10)


def group4(digits: str, sep: str = " ") -> str:
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


def iban(r: random.Random) -> str:
    country, bban = r.choice([("DE", "".join(str(r.randint(0, 9)) for _ in range(18))),
                              ("GB", "NWBK" + "".join(str(r.randint(0, 9)) for _ in range(14))),
                              ("FR", "".join(str(r.randint(0, 9)) for _ in range(23)))])
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    raw = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return group4(raw) if r.random() < 0.6 else raw


def ssn(r: random.Random) -> str:
    area = r.choice([x for x in range(1, 900) if x != 666])
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def mobile(r: random.Random) -> str:
    n = f"1{r.choice('3456789')}{r.randint(0, 9)}{r.randint(0, 99999999):08d}"
    return r.choice([n, f"+86 {n}", f"{n[:3]} {n[3:7]} {n[7:]}", f"{n[:3]}-{n[3:7]}-{n[7:]}", f"+86-{n}"])


def landline(r: random.Random) -> str:
    area = r.choice(["010", "021", "020", "0755", "0571", "028", "025"])
    local = f"{r.randint(2, 8)}{r.randint(0, 9999999):07d}" if len(area) == 3 else \
        f"{r.randint(2, 8)}{r.randint(0, 999999):06d}"
    return r.choice([f"{area}-{local}", f"({area}){local}", f"{area} {local}"])


def zh_address(r: random.Random) -> str:
    city, district = r.choice(ZH_PLACES)
    unit = r.choice(["", f"{r.randint(1, 20)}栋{r.randint(101, 2505)}室"])
    return f"{city}{district}{r.choice(ZH_ROADS)}{r.randint(1, 999)}号{unit}"


def en_address(r: random.Random) -> str:
    city, state = r.choice(EN_CITIES)
    return f"{r.randint(1, 9999)} {r.choice(EN_STREETS)}, {city}, {state} {r.randint(10000, 99999)}"


def email(r: random.Random) -> str:
    user = r.choice(["zhang.wei", "li_na", "j.smith", "mary.brown", "ops+alerts"])
    return f"{user}{r.randint(1, 99)}@{r.choice(['example.com', 'corp.example.cn', 'mail.test.org'])}"


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


def value(kind: str, r: random.Random) -> tuple[str, str | None]:
    """(text, entity type or None for a hard negative)."""
    makers = {
        "CN_ID": lambda: (cn_id(r), "CN_ID"),
        "CN_ID_FW": lambda: (fullwidth(cn_id(r)), "CN_ID"),
        "BAD_ID": lambda: (cn_id(r, valid=False), None),
        "CN_MOBILE": lambda: (mobile(r), "CN_MOBILE"),
        "CN_LANDLINE": lambda: (landline(r), "CN_LANDLINE"),
        "CN_BANK_CARD": lambda: (r.choice([lambda d: d, group4])(luhn_complete("62" + str(r.randint(10, 99)),
                                                                               r.choice([16, 19]), r)),
                                 "CN_BANK_CARD"),
        "PASSPORT_CN": lambda: (r.choice(["E", "G"]) + f"{r.randint(0, 99999999):08d}", "PASSPORT"),
        "PASSPORT_US": lambda: (f"{r.randint(100000000, 999999999)}", "PASSPORT"),
        "EMAIL_ADDRESS": lambda: (email(r), "EMAIL_ADDRESS"),
        "IPV4": lambda: (".".join(str(x) for x in (r.choice([10, 172, 192, 203, 58]), r.randint(0, 255),
                                                    r.randint(0, 255), r.randint(1, 254))), "IP_ADDRESS"),
        "IPV6": lambda: (f"2001:db8:{r.randint(0, 65535):x}::{r.randint(1, 65535):x}", "IP_ADDRESS"),
        "US_SSN": lambda: (ssn(r), "US_SSN"),
        "CREDIT_CARD": lambda: (r.choice([lambda d: d, group4, lambda d: group4(d, "-")])(
            r.choice([lambda: luhn_complete("4", 16, r), lambda: luhn_complete(str(r.randint(51, 55)), 16, r)])()),
            "CREDIT_CARD"),
        "AMEX": lambda: (luhn_complete(r.choice(["34", "37"]), 15, r), "CREDIT_CARD"),
        "BAD_CARD": lambda: (group4(luhn_broken("4", 16, r)), None),
        "IBAN_CODE": lambda: (iban(r), "IBAN_CODE"),
        "ZH_NAME": lambda: (r.choice(ZH_SURNAMES) + r.choice(ZH_GIVEN), "PERSON"),
        "EN_NAME": lambda: (f"{r.choice(EN_FIRST)} {r.choice(EN_LAST)}", "PERSON"),
        "EN_LAST": lambda: (r.choice(EN_LAST), "PERSON"),
        "PINYIN": lambda: (r.choice(PINYIN), "PERSON"),
        "ZH_ADDRESS": lambda: (zh_address(r), "ADDRESS"),
        "EN_ADDRESS": lambda: (en_address(r), "ADDRESS"),
        "ORDER_NO": lambda: ("".join((f"{r.randint(2019, 2026)}", f"{r.randint(1, 12):02d}",
                                      f"{r.randint(1, 28):02d}", f"{r.randint(0, 10**8 - 1):08d}")), None),
        "DATE": lambda: (r.choice([f"{r.randint(2000, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                                   f"{r.randint(2000, 2026)}年{r.randint(1, 12)}月{r.randint(1, 28)}日"]), None),
        "AMOUNT": lambda: (f"{r.randint(1, 999)},{r.randint(0, 999):03d}.{r.randint(0, 99):02d}", None),
        "TRACKING": lambda: (f"SF{r.randint(10**12, 10**13 - 1)}", None),
        "VERSION": lambda: (f"{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 30)}", None),
        "PRODUCT": lambda: (f"E{r.randint(10**7, 10**8 - 1)}", None),
        "ELEVEN": lambda: (f"{r.choice('2456789')}{r.randint(0, 10**10 - 1):010d}", None),
    }
    text, entity = makers[kind]()
    return text, entity


ZH_TEMPLATES = [
    "我叫{ZH_NAME}，身份证号码是{CN_ID}，请帮我查一下社保缴费记录。",
    "客户{ZH_NAME}的手机号{CN_MOBILE}无法接收验证码，请尽快处理。",
    "联系人：{ZH_NAME}，电话：{CN_LANDLINE}，地址：{ZH_ADDRESS}。",
    "请把合同寄到{ZH_ADDRESS}，收件人{ZH_NAME}，手机{CN_MOBILE}。",
    "我的银行卡号是{CN_BANK_CARD}，开户行是招商银行，工资一直没到账。",
    "患者{ZH_NAME}，身份证{CN_ID}，今天上午在门诊复查，血压正常。",
    "护照号码{PASSPORT_CN}，签发地北京，有效期到2031年。",
    "请通过邮箱{EMAIL_ADDRESS}联系我，或者拨打{CN_MOBILE}。",
    "服务器{IPV4}的日志显示有异常登录，请运维同事排查。",
    "{ZH_NAME}先生您好，您的订单已发货，预计三天内送达。",
    "申请人{ZH_NAME}的身份证号为{CN_ID_FW}，材料已经齐全。",
    "公司总机{CN_LANDLINE}，传真同号，欢迎来电咨询。",
    "持卡人：{ZH_NAME}  卡号：{CN_BANK_CARD}  有效期：12/28",
    "昨天{ZH_NAME}在会上提出了新的方案，大家反响不错。",
    "这是测试数据：用户 {EMAIL_ADDRESS} 从 {IPV4} 登录失败三次。",
    "收货地址：{ZH_ADDRESS}，联系电话{CN_MOBILE}，请工作日送货。",
    "我是{ZH_NAME}，信用卡{CREDIT_CARD}被盗刷了，需要冻结。",
    "请核对以下信息：姓名{ZH_NAME}，证件号{CN_ID}，手机号{CN_MOBILE}。",
    "{ZH_NAME}女士的护照{PASSPORT_CN}即将过期，请提醒她续签。",
    "家住{ZH_ADDRESS}的{ZH_NAME}报案称电动车被盗。",
]
ZH_NEGATIVES = [
    "订单号{ORDER_NO}已经支付成功，金额{AMOUNT}元。",
    "编号{BAD_ID}的记录校验失败，请人工复核。",
    "会议定在{DATE}下午三点，地点在三楼会议室。",
    "快递单号{TRACKING}，预计明天送达。",
    "系统升级到{VERSION}版本后，响应时间下降了百分之二十。",
    "产品型号{PRODUCT}已停产，请选择替代型号。",
    "流水号{ELEVEN}对应的交易已冲正。",
    "这张卡{BAD_CARD}的校验位不对，可能是输入错误。",
    "报表统计周期为{DATE}至{DATE}，共处理工单{AMOUNT}件。",
    "请参考文档第{VERSION}节，以及附录中的编号{BAD_ID}。",
]
EN_TEMPLATES = [
    "My name is {EN_NAME} and my SSN is {US_SSN}. Please update my tax record.",
    "Please charge the card {CREDIT_CARD} for the annual subscription.",
    "Wire the refund to IBAN {IBAN_CODE} by Friday.",
    "Contact {EN_NAME} at {EMAIL_ADDRESS} about the contract renewal.",
    "Dear {EN_NAME}, your appointment is confirmed for next Tuesday.",
    "Ship the package to {EN_ADDRESS} before the end of the month.",
    "The login from {IPV4} was blocked after five failed attempts.",
    "Our new gateway listens on {IPV6}, please update the firewall.",
    "Dr. {EN_LAST} reviewed the scan and found nothing unusual.",
    "Passport number: {PASSPORT_US}, issued in Chicago.",
    "Customer {PINYIN} called about the delayed delivery to Shanghai.",
    "The Amex card {AMEX} was declined at checkout.",
    "Employee {EN_NAME}, social security number {US_SSN}, starts on Monday.",
    "{EN_NAME} will present the quarterly numbers at the all-hands.",
    "Please reach me at {EMAIL_ADDRESS} or on my mobile {CN_MOBILE} while I am in Beijing.",
    "Mr. {EN_NAME} lives at {EN_ADDRESS} and asked for paper statements.",
    "Patient {EN_NAME} was admitted on Monday, card on file {CREDIT_CARD}.",
    "Regards, {EN_NAME}",
    "The traveler {EN_NAME} holds passport {PASSPORT_CN} and a visa for France.",
    "Send the invoice to {EMAIL_ADDRESS}; the payment goes to {IBAN_CODE}.",
]
EN_NEGATIVES = [
    "Order {ORDER_NO} shipped on {DATE} with a total of ${AMOUNT}.",
    "Record {BAD_ID} failed validation and needs a manual review.",
    "We upgraded to version {VERSION} and the p99 latency dropped by half.",
    "The test card {BAD_CARD} is rejected by the Luhn check, as expected.",
    "Tracking number {TRACKING} shows the parcel in transit.",
    "The meeting moved to {DATE}; the budget is ${AMOUNT}.",
    "Part {PRODUCT} is out of stock, use the newer revision instead.",
    "Ticket {ELEVEN} was closed as a duplicate.",
    "Section {VERSION} of the spec defines the retry policy.",
    "The Great Wall and the Forbidden City are in Beijing; Main Street is in every American town.",
]
HANDWRITTEN = [
    ("zh", "请联系张伟先生，电话138 0013 8000，或发邮件到zhangwei@example.com。",
     [("PERSON", "张伟"), ("CN_MOBILE", "138 0013 8000"), ("EMAIL_ADDRESS", "zhangwei@example.com")]),
    ("zh", "身份证11010519491231002X的持有人已经注销户口。", [("CN_ID", "11010519491231002X")]),
    ("zh", "身份证号110105194912310021是错的，最后一位应该是X。", []),
    ("zh", "今天天气很好，我们去公园散步，然后吃了火锅。", []),
    ("zh", "欧阳娜娜女士今天下午到访。", [("PERSON", "欧阳娜娜")]),
    ("zh", "总部位于北京市海淀区中关村大街27号。", [("ADDRESS", "北京市海淀区中关村大街27号")]),
    ("en", "Nothing personal here: the build took 12.5 seconds on 4 cores and used 3.2 GB.", []),
    ("en", "Call +86 139 1234 5678 or 010-87654321 when you land.",
     [("CN_MOBILE", "+86 139 1234 5678"), ("CN_LANDLINE", "010-87654321")]),
    ("en", "The reference account GB82 WEST 1234 5698 7654 32 is the standard example.",
     [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")]),
    ("en", "Version 2.14.4 of the library fixed the bug reported by Sarah Connor.",
     [("PERSON", "Sarah Connor")]),
    ("zh", "客服热线400-820-8820，工作时间9:00-18:00。", []),
    ("zh", "书号ISBN 978-7-111-54493-7，定价59.00元，2019年8月第1版。", []),
    ("en", "The Unix time 1700000000 is in November 2023; 2**31 is 2147483648.", []),
    ("en", "We met at Thomas Jefferson High School after the game.", []),
    ("en", "Use 127.0.0.1 for local tests and fd00::1:2 on the lab network.",
     [("IP_ADDRESS", "127.0.0.1"), ("IP_ADDRESS", "fd00::1:2")]),
    ("zh", "王总说下周二开会，李经理负责准备材料。", []),
    ("zh", "手机尾号8000的用户，您的验证码是482913，五分钟内有效。", []),
    ("en", "Invoice INV-2024-000123 for 1,250.00 USD is due on 2024-07-01.", []),
]


def fill(template: str, r: random.Random) -> tuple[str, list[dict]]:
    text, spans, pos = "", [], 0
    for m in SLOT.finditer(template):
        text += template[pos:m.start()]
        val, entity = value(m.group(1), r)
        if entity:
            spans.append({"start": len(text), "end": len(text) + len(val), "type": entity})
        text += val
        pos = m.end()
    text += template[pos:]
    if SLOT.search(text):
        raise ValueError(f"unfilled slot in {template!r}")
    return text, spans


def build(seed: int = 20261128) -> list[dict]:
    r = random.Random(seed)
    rows: list[dict] = []
    for lang, templates, negatives in (("zh", ZH_TEMPLATES, ZH_NEGATIVES), ("en", EN_TEMPLATES, EN_NEGATIVES)):
        for rep in range(4):
            for t in templates:
                text, spans = fill(t, r)
                rows.append({"lang": lang, "text": text, "spans": spans, "kind": "positive"})
        for rep in range(3):
            for t in negatives:
                text, spans = fill(t, r)
                rows.append({"lang": lang, "text": text, "spans": spans, "kind": "hard_negative"})
    for lang, text, items in HANDWRITTEN:
        spans = []
        for entity, val in items:
            start = text.index(val)
            spans.append({"start": start, "end": start + len(val), "type": entity})
        rows.append({"lang": lang, "text": text, "spans": spans, "kind": "handwritten"})
    for i, row in enumerate(rows):
        row["id"] = f"{row['lang']}-{i:03d}"
    return rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in ("id", "lang", "kind", "text", "spans")},
                                ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} snippets to {OUT}")


if __name__ == "__main__":
    main()
