"""Recognizers for mainland-China identifiers, phone numbers, names and addresses (Presidio has none)."""

from __future__ import annotations

from typing import Any

from deeplocal.gateway.pii import checksums
from deeplocal.gateway.pii.types import (
    ADDRESS,
    CN_BANK_CARD,
    CN_ID,
    CN_LANDLINE,
    CN_MOBILE,
    DIGIT_ANCHOR,
    NA1,
    NB,
    PASSPORT,
    PERSON,
    EntityRecognizer,
    Pattern,
)

# The common single-character surnames (they cover the great majority of the population) and the
# common compound ones. Names are only taken after a cue word or before an honorific, never alone.
SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
    "莫孔汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅"
    "童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项"
    "连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖"
    "巩佘池查麻苑迟邝"
)
SURNAMES_2 = ("欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "尉迟", "公孙", "夏侯",
              "轩辕", "长孙", "宇文", "司徒", "端木", "西门", "南宫", "独孤", "澹台")
HONORIFICS = ("先生", "女士", "小姐", "同学", "老师", "医生", "经理", "律师", "教授", "主任", "总监",
              "阿姨", "师傅", "护士", "警官")
# Characters that, right after a surname or a first given character, almost always start the next
# word rather than continue the name ("联系人李娜电话..." is 李娜, not 李娜电).
_STOP = "的是在了和与及等电手联邮微住身证号码年月日岁男女今来去已于向从对为让您你我他她们说也都就还又很把被给请将会能可这那并且但而或吗呢吧啊地址现目需要工作所属"
_CUES = ("姓名", "名字", "联系人", "收件人", "收货人", "寄件人", "患者", "病人", "客户", "乘客", "申请人",
         "持卡人", "户主", "负责人", "法定代表人", "报案人", "当事人", "委托人", "监护人", "投保人", "被保险人",
         "我叫", "我是", "本人", "签名", "经办人", "业主", "租客", "员工", "学生")
PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
    "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
CITIES = (
    "深圳", "广州", "杭州", "南京", "苏州", "成都", "武汉", "西安", "长沙", "郑州", "青岛", "厦门", "宁波",
    "无锡", "济南", "合肥", "福州", "昆明", "大连", "沈阳", "哈尔滨", "长春", "石家庄", "太原", "南昌",
    "南宁", "贵阳", "兰州", "海口", "东莞", "佛山", "珠海", "温州", "常州", "徐州", "烟台", "绍兴", "嘉兴",
    "中山", "惠州", "泉州", "洛阳", "唐山", "保定", "乌鲁木齐", "呼和浩特", "拉萨", "银川", "西宁",
)

_HAN = r"[\u4e00-\u9fff]"
_GIVEN = rf"(?:(?!{'|'.join(HONORIFICS)})(?![{_STOP}]){_HAN})"
_SURNAME = rf"(?:{'|'.join(SURNAMES_2)}|[{SURNAMES_1}])"
_NAME = rf"{_SURNAME}{_GIVEN}{{1,2}}"
_ROAD = r"(?:路|街|大道|大街|巷|弄|胡同|道)"
_NUM = r"[0-9一二三四五六七八九十百甲乙之\-]{1,8}号"
_UNIT = r"(?:[0-9A-Za-z一二三四五六七八九十\-]{1,6}(?:号楼|栋|幢|座|楼|单元|层|室|号)){0,4}"
_PLACE = rf"(?:{'|'.join(PROVINCES + CITIES)})"
_ADDRESS_CUES = ("地址", "住址", "住在", "家住", "位于", "寄到", "送到", "收货地址", "寄件地址", "通讯地址", "户籍地")
_AREA = r"(?:10|2[0-9]|[3-9][0-9]{2})"
_LOCAL = r"[2-8][0-9]{6,7}(?:(?:-|转|ext\.?\s?)[0-9]{1,5})?"
_DIGITS: dict[str, Any] = {"anchor": DIGIT_ANCHOR, "window": (8, 8)}


def _cn_id() -> EntityRecognizer:
    body = r"[1-8]" + NA1 + r"[0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    return EntityRecognizer(CN_ID, (Pattern("cn_id_18", body + NB, 1.0),), supported_language="zh",
                            validate=checksums.cn_id_valid, **_DIGITS)


def _cn_mobile() -> EntityRecognizer:
    rest = r"1[3-9][0-9](?:[ -]?[0-9]{4}){2}" + NB
    prefixed = r"[+0(]" + NA1 + r"(?:(?<=\+)86|(?<=0)086|(?<=\()\+?86\))[ -]?" + rest
    return EntityRecognizer(
        CN_MOBILE, (Pattern("cn_mobile", "1" + NA1 + rest[1:], 0.75), Pattern("cn_mobile_86", prefixed, 0.75)),
        supported_language="zh",
        context=("手机", "电话", "联系", "致电", "拨打", "微信", "号码", "mobile", "phone", "tel", "call",
                 "whatsapp"),
        context_boost=0.2, **_DIGITS)


def _cn_landline() -> EntityRecognizer:
    patterns = (
        Pattern("cn_landline", "0" + NA1 + _AREA + r"[ -]?" + _LOCAL + NB, 0.6),
        Pattern("cn_landline_paren", r"[(（]" + NA1 + "0" + _AREA + r"[)）][ -]?" + _LOCAL + NB, 0.6),
        Pattern("cn_landline_86", r"[+0]" + NA1 + r"(?:(?<=\+)86|(?<=0)086)[ -]?\(?0?" + _AREA + r"\)?[ -]?"
                + _LOCAL + NB, 0.6),
    )
    return EntityRecognizer(
        CN_LANDLINE, patterns, supported_language="zh",
        context=("电话", "座机", "固话", "传真", "总机", "热线", "tel", "phone", "fax"), context_boost=0.3,
        anchor=DIGIT_ANCHOR, window=(8, 12))


def _cn_bank_card() -> EntityRecognizer:
    return EntityRecognizer(
        CN_BANK_CARD, (Pattern("unionpay_62", "6" + NA1 + r"2[0-9]{2}(?:[ -]?[0-9]){12,15}" + NB, 0.85),
                       Pattern("card_with_context", "[0-9]" + NA1 + r"(?:[ -]?[0-9]){15,18}" + NB, 0.3)),
        supported_language="zh",
        validate=lambda v: 16 <= len(checksums.digits_only(v)) <= 19 and checksums.luhn_valid(v),
        context=("银行卡", "卡号", "账号", "借记卡", "储蓄卡", "开户行", "银行账户", "工资卡", "bank card",
                 "card no", "account no"),
        context_boost=0.5, context_window=30, **_DIGITS)


def _cn_passport() -> EntityRecognizer:
    # PRC ordinary passports: E + 8 digits, E + letter + 7 digits (2012 on), G + 8 digits (older).
    pat = r"[EGDSP]" + NA1 + r"(?:(?<=[EG])[0-9]{8}|(?<=E)[A-HJ-NP-Z][0-9]{7}|(?<=[DSP])E?[0-9]{7,8})" + NB
    return EntityRecognizer(
        PASSPORT, (Pattern("cn_passport", pat, 0.45),), name="cn_passport_recognizer",
        supported_language="zh", context=("护照", "passport", "证件号", "旅行证件"),
        context_boost=0.45, context_window=30, **_DIGITS)


def _cn_person() -> tuple[EntityRecognizer, ...]:
    cues = "|".join(_CUES)
    cue = rf"(?:{cues})(?:[：:是为]|\s)*(?P<v>{_NAME})"
    honorific = rf"(?P<v>{_NAME})(?={'|'.join(HONORIFICS)})"
    return (
        EntityRecognizer(PERSON, (Pattern("cn_name_after_cue", cue, 0.85),), name="cn_person_cue",
                         supported_language="zh", anchor=f"(?:{cues})", window=(0, 10)),
        EntityRecognizer(PERSON, (Pattern("cn_name_before_honorific", honorific, 0.7),),
                         name="cn_person_honorific", supported_language="zh",
                         anchor=f"(?:{'|'.join(HONORIFICS)})", window=(4, 0)),
    )


def _cn_address() -> tuple[EntityRecognizer, ...]:
    tail = rf"{_HAN}{{0,14}}?{_ROAD}{_NUM}{_UNIT}"
    cue = rf"(?:{'|'.join(_ADDRESS_CUES)})[：:\s]*(?P<v>{_HAN}{{1,14}}?{_ROAD}{_NUM}{_UNIT})"
    anchor = r"[路街道巷弄同][0-9一二三四五六七八九十百甲乙之\-]{1,8}号"
    return (
        EntityRecognizer(ADDRESS, (Pattern("cn_address_from_place", rf"(?P<v>{_PLACE}{tail})", 0.75),),
                         name="cn_address_place", supported_language="zh", anchor=anchor, window=(30, 40)),
        EntityRecognizer(ADDRESS, (Pattern("cn_address_after_cue", cue, 0.7),), name="cn_address_cue",
                         supported_language="zh", anchor=anchor, window=(30, 40)),
    )


def chinese_recognizers(*, names: bool = True, addresses: bool = True) -> tuple[EntityRecognizer, ...]:
    """The mainland-China recognizers; names and addresses are the low-precision ones, switchable."""
    out: tuple[EntityRecognizer, ...] = (_cn_id(), _cn_mobile(), _cn_landline(), _cn_bank_card(),
                                         _cn_passport())
    if names:
        out += _cn_person()
    if addresses:
        out += _cn_address()
    return out
