"""Static tables about the world the synthetic users live in: countries, carriers, names, money.

Everything here is invented or public reference data (MCC/MNC codes, ICCID issuer prefixes,
IANA time zones, bank identification numbers). Network prefixes are real allocations of the
named operators so that addresses look public, but the individual addresses are random.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Carrier:
    """A mobile operator: the IMSI starts with ``mcc + mnc``, the ICCID with ``iccid_prefix``."""

    mcc: str
    mnc: str
    iccid_prefix: str
    name: str
    cdma: bool = False  # China Telecom handsets also carry an MEID


@dataclass(frozen=True, slots=True)
class Country:
    """One market: how its phones, SIMs, networks, names and money look."""

    code: str
    weight: float
    tzs: tuple[str, ...]
    languages: tuple[str, ...]
    calling_code: int
    mobile_prefixes: tuple[str, ...]
    national_len: int
    carriers: tuple[Carrier, ...]
    currency: str
    amount_median: float
    decimals: int
    institutions: tuple[str, ...]
    wallet_share: float  # share of wallet payments; the rest split over card/bank/cod
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    android_share: float
    given: tuple[str, ...]
    family: tuple[str, ...]
    search: tuple[str, ...]


# Data tables, kept as laid out: one entry per line.
# fmt: off
COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country(
            "CN", 0.50, ("Asia/Shanghai",), ("zh-CN", "zh-Hans-CN", "zh_CN"), 86,
            ("138", "139", "135", "136", "186", "188", "158", "159", "177", "199", "150", "133"), 11,
            (Carrier("460", "00", "898600", "China Mobile"), Carrier("460", "01", "898601", "China Unicom"),
             Carrier("460", "11", "898611", "China Telecom", cdma=True)),
            "CNY", 68.0, 2, ("Alipay", "WeChat Pay", "ICBC", "China Construction Bank", "China Merchants Bank",
                             "Bank of China", "UnionPay"), 0.62,
            ("223.104.0.0/15", "117.136.0.0/13", "112.96.0.0/15", "183.192.0.0/11", "114.88.0.0/14", "36.112.0.0/12"),
            ("2409:8900::/28", "240e:300::/24", "2408:8400::/24"), 0.76,
            ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
             "明", "超", "秀兰", "霞", "平", "刚", "桂英", "子涵", "浩然", "雨桐"),
            ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
             "高", "林", "罗"),
            ("iphone 15 pro max 256g", "华为mate60", "连衣裙 秋冬", "羽绒服女", "小米手环8", "零食大礼包",
             "双十一优惠券", "猫粮", "电动牙刷", "洗衣液 家庭装", "蓝牙耳机 降噪", "奶粉3段", "运动鞋 男",
             "充电宝 20000", "茅台"),
        ),
        Country(
            "IN", 0.15, ("Asia/Kolkata",), ("en-IN", "hi-IN", "en_IN"), 91,
            ("98", "99", "97", "96", "90", "88", "70", "63", "81", "93"), 10,
            (Carrier("404", "45", "899110", "Airtel"), Carrier("405", "857", "891874", "Jio")),
            "INR", 540.0, 2, ("PhonePe", "Paytm", "Google Pay", "HDFC Bank", "State Bank of India", "ICICI Bank"), 0.55,
            ("49.36.0.0/14", "157.32.0.0/12", "106.192.0.0/11", "117.96.0.0/12"), ("2409:4000::/22", "2401:4900::/32"),
            0.93,
            ("Rahul", "Priya", "Amit", "Sneha", "Vikram", "Anjali", "Arjun", "Pooja", "Rohan", "Kavya", "Suresh",
             "Lakshmi"),
            ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Das", "Mehta"),
            ("cotton saree", "redmi note 13", "kurta for men", "pressure cooker 5 litre", "diwali lights",
             "boat earphones", "school bag", "atta 10kg", "mobile cover", "protein powder"),
        ),
        Country(
            "ID", 0.12, ("Asia/Jakarta", "Asia/Makassar"), ("id-ID", "in-ID", "id_ID"), 62,
            ("812", "813", "821", "822", "852", "853", "811", "857", "858", "878", "896"), 11,
            (Carrier("510", "10", "896210", "Telkomsel"), Carrier("510", "11", "896211", "XL Axiata")),
            "IDR", 85000.0, 0, ("GoPay", "OVO", "DANA", "ShopeePay", "Bank Central Asia", "Bank Mandiri", "BRI"), 0.6,
            ("114.124.0.0/16", "36.64.0.0/11", "182.0.0.0/12", "110.136.0.0/13"), ("2001:448a::/32",), 0.89,
            ("Budi", "Siti", "Agus", "Dewi", "Andi", "Rina", "Eko", "Putri", "Joko", "Ayu"),
            ("Santoso", "Rahayu", "Wijaya", "Saputra", "Hidayat", "Susanto", "Lestari", "Pratama", "Kusuma"),
            ("baju muslim wanita", "hijab instan", "sepatu sneakers", "skincare glowing", "casing hp",
             "rice cooker", "kopi sachet", "tas ransel", "mukena"),
        ),
        Country(
            "TH", 0.08, ("Asia/Bangkok",), ("th-TH", "th_TH", "en-TH"), 66,
            ("81", "82", "86", "89", "91", "92", "61", "62", "64"), 9,
            (Carrier("520", "03", "896603", "AIS"), Carrier("520", "04", "896604", "TrueMove H")),
            "THB", 320.0, 2, ("TrueMoney", "PromptPay", "Kasikornbank", "Bangkok Bank", "SCB", "Krungthai"), 0.5,
            ("49.228.0.0/14", "171.96.0.0/13", "1.46.0.0/15", "223.24.0.0/14"), ("2001:fb1::/32", "2405:9800::/32"),
            0.74,
            ("Somchai", "Suda", "Anan", "Malee", "Niran", "Ploy", "Kittisak", "Nok", "Chai", "Ratana"),
            ("Srisuk", "Sukjai", "Wongsa", "Chaiyaporn", "Thongdee", "Boonmee", "Saetang", "Rattanakul"),
            ("เสื้อยืด", "ครีมกันแดด", "หูฟังบลูทูธ", "รองเท้าผ้าใบ", "กระเป๋าสะพาย", "น้ำหอม", "ของเล่นเด็ก"),
        ),
        Country(
            "US", 0.10, ("America/New_York", "America/Chicago", "America/Los_Angeles"), ("en-US", "es-US", "en_US"), 1,
            ("212", "415", "646", "312", "305", "206", "617", "213", "404", "512", "702"), 10,
            (Carrier("310", "260", "8901260", "T-Mobile"), Carrier("310", "410", "890141", "AT&T")),
            "USD", 32.0, 2, ("Chase", "Bank of America", "Capital One", "Wells Fargo", "PayPal", "Apple Pay"), 0.25,
            ("73.0.0.0/8", "98.192.0.0/10", "172.56.0.0/14", "107.77.0.0/16", "24.0.0.0/12"),
            ("2601::/20", "2607:fb90::/32", "2600:1700::/28"), 0.45,
            ("James", "Mary", "Michael", "Jennifer", "David", "Linda", "Chris", "Sarah", "Daniel", "Emily"),
            ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez", "Wilson"),
            ("air fryer", "stanley cup", "running shoes men", "iphone charger", "ps5 controller", "yoga mat",
             "lego star wars", "coffee beans"),
        ),
        Country(
            "GB", 0.05, ("Europe/London",), ("en-GB", "en_GB", "cy-GB"), 44,
            ("740", "741", "745", "747", "750", "751", "770", "771", "775", "777", "780", "790"), 10,
            (Carrier("234", "15", "894410", "Vodafone UK"), Carrier("234", "10", "894411", "O2 UK")),
            "GBP", 26.0, 2, ("Barclays", "HSBC UK", "Monzo", "Lloyds Bank", "NatWest", "Revolut"), 0.3,
            ("86.128.0.0/10", "81.96.0.0/12", "82.132.0.0/16", "92.40.0.0/13"), ("2a00:23c0::/28", "2a02:c7c::/32"),
            0.5,
            ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Sophie", "Noah", "Freya"),
            ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "Roberts", "Walker"),
            ("wellies", "advent calendar", "kettle", "football boots", "hoodie", "tea bags 240", "phone case"),
        ),
    )
}

#: Hosting and proxy ranges: emulator farms and account takers hide behind these.
DATACENTER_V4 = ("47.74.0.0/15", "43.128.0.0/10", "45.76.0.0/15", "159.65.0.0/16", "185.220.100.0/22", "8.210.0.0/16")
DATACENTER_V6 = ("2001:19f0::/32", "2604:a880::/32")
#: RFC 5737 / RFC 3849 documentation ranges: a few lab and test-harness clients report them.
DOC_V4 = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
DOC_V6 = ("2001:db8::/32",)
#: What SDKs report when they read the Wi-Fi interface instead of the public address.
PRIVATE_V4 = ("192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12")

#: China resident-ID area codes: municipal districts coded before 1950, then districts coded in 1983.
CN_AREAS_OLD = ("110101", "110102", "110105", "110108", "310101", "310104", "310106", "120101")
CN_AREAS = (*CN_AREAS_OLD, "440103", "440305", "330106", "420102", "320102", "610103", "370102", "350102", "430102")
#: Indonesian regency/city codes that open a NIK (Jakarta, Bandung, Surabaya, Semarang, Denpasar, Medan).
ID_REGENCIES = ("3171", "3172", "3273", "3578", "3374", "5171", "1271", "3471")
#: Bank identification numbers of UnionPay debit cards, for bank_account values.
CN_BINS = ("622202", "621700", "622588", "621661", "622848", "623062")
GB_BANKS = ("BARC", "HBUK", "LOYD", "NWBK", "MONZ")

#: Card issuers seen in card-testing bursts: the testers cycle through stolen cards of many banks.
CARD_ISSUERS = ("Visa Classic", "Mastercard Debit", "Amex", "Discover", "JCB", "UnionPay Credit", "Chase",
                "Citi", "Barclaycard", "Capital One", "HSBC", "Santander")

PAGES = ("/home", "/home", "/category/{n}", "/product/{n}", "/product/{n}", "/product/{n}", "/search", "/cart",
         "/checkout", "/order/{n}", "/me", "/me/settings", "/wallet", "/coupon/center", "/live/{n}",
         "/message")
PROMO_PAGES = ("/promo/newuser", "/coupon/center", "/promo/newuser/claim")
SECURITY_PAGES = ("/me/security", "/me/security/password", "/wallet", "/wallet/withdraw")
WEB_PAGES = ("/", "/s", "/item/{n}", "/item/{n}", "/cart", "/checkout", "/help/{n}", "/account")

#: 24 local-hour activity weights (night trough, lunch and evening peaks).
DIURNAL = (0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.8, 2.6, 3.0, 3.2, 3.6, 4.4, 4.0, 3.4, 3.2, 3.4, 3.8, 4.2, 4.8,
           5.6, 5.8, 4.6, 2.2)
# fmt: on

APP_PACKAGE = "com.example.shop"
#: Current and older app versions per platform; old versions crash more often.
APP_VERSIONS = {
    "android": ("9.4.1", "9.4.0", "9.3.2", "9.2.0"),
    "ios": ("9.4.1", "9.4.0", "9.3.5"),
    "web": ("2026.11.2", "2026.10.4"),
}
OLD_VERSIONS = {"android": ("7.12.3", "8.0.1", "8.3.0"), "ios": ("8.1.0", "8.4.2"), "web": ("2025.06.1",)}
