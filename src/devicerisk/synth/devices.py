"""Static tables about hardware and software: device models, TACs, OUIs, apps and user agents.

TACs are 8-digit type allocation codes with the reporting-body prefixes real handsets carry
(35 = BABT, 86 = TAF China); a few are published TACs of the named models, the others only look
like them. OUIs are vendor MAC prefixes, all with the local and multicast bits clear.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Model:
    """One handset model as an SDK reports it."""

    manufacturer: str
    model: str
    platform: str  # android | ios
    os: str
    os_versions: tuple[str, ...]
    hardware: str
    screen: str
    market_name: str
    tacs: tuple[str, ...]
    ouis: tuple[str, ...]
    markets: tuple[str, ...]  # country codes where it sells; empty = everywhere
    emulator: bool = False


_ANDROID = ("14", "13", "12", "11", "10")
_HARMONY = ("4.2.0", "4.0.0", "3.0.0")
_IOS = ("18.1", "18.0.1", "17.6.1", "17.5", "16.7.10")
_CN = ("CN",)
_SEA = ("IN", "ID", "TH")

# Data tables, kept as laid out: one entry per line.
# fmt: off
MODELS: tuple[Model, ...] = (
    Model("Xiaomi", "2211133C", "android", "Android", _ANDROID[:3], "qcom", "1080x2400", "Xiaomi 13",
          ("86881203", "86769504"), ("64:09:80", "28:6C:07"), _CN),
    Model("Xiaomi", "23127PN0CC", "android", "Android", _ANDROID[:2], "qcom", "1200x2670", "Xiaomi 14",
          ("86400106",), ("F8:A4:5F", "9C:99:A0"), _CN),
    Model("Xiaomi", "22101316C", "android", "Android", _ANDROID[1:4], "mt6877", "1080x2400", "Redmi Note 12 Pro",
          ("86240105", "86297406"), ("64:09:80", "9C:99:A0"), _CN),
    Model("Xiaomi", "23021RAA2Y", "android", "Android", _ANDROID[:3], "qcom", "1080x2400", "Redmi Note 12",
          ("86242106", "35123011"), ("28:6C:07", "F8:A4:5F"), _SEA),
    Model("HUAWEI", "ALN-AL00", "android", "HarmonyOS", _HARMONY[:2], "kirin9000s", "1260x2720", "HUAWEI Mate 60 Pro",
          ("86717303", "86103406"), ("00:E0:FC", "48:46:FB"), _CN),
    Model("HUAWEI", "NOH-AN00", "android", "HarmonyOS", _HARMONY, "kirin9000", "1344x2772", "HUAWEI Mate 40 Pro",
          ("86578204", "35286207"), ("88:28:B3", "00:E0:FC"), _CN),
    Model("HONOR", "ANY-AN00", "android", "Android", _ANDROID[1:4], "qcom", "1080x2388", "HONOR X30",
          ("86952805",), ("48:46:FB",), _CN),
    Model("OPPO", "PHZ110", "android", "Android", _ANDROID[:2], "qcom", "1440x3168", "OPPO Find X6 Pro",
          ("86955203", "86404405"), ("2C:5B:B8", "A4:3D:78"), _CN),
    Model("OPPO", "CPH2591", "android", "Android", _ANDROID[:2], "mt6877", "1080x2412", "OPPO Reno11 F",
          ("86813607", "35871012"), ("E8:BB:A8", "A4:3D:78"), _SEA),
    Model("vivo", "V2241A", "android", "Android", _ANDROID[:2], "mt6985", "1260x2800", "vivo X90 Pro",
          ("86260904", "86820605"), ("DC:A9:04", "3C:A6:16"), _CN),
    Model("vivo", "V2202", "android", "Android", _ANDROID[1:3], "mt6833", "720x1612", "vivo Y35",
          ("86513906",), ("3C:A6:16",), _SEA),
    Model("samsung", "SM-S9180", "android", "Android", _ANDROID[:2], "qcom", "1440x3088", "Galaxy S23 Ultra",
          ("35332811", "35460110"), ("8C:F5:A3", "5C:0A:5B"), _CN),
    Model("samsung", "SM-S918B", "android", "Android", _ANDROID[:2], "qcom", "1440x3088", "Galaxy S23 Ultra",
          ("35290611", "35332911"), ("E8:50:8B", "FC:A1:3E"), ("IN", "ID", "TH", "GB")),
    Model("samsung", "SM-A546E", "android", "Android", _ANDROID[:2], "s5e8835", "1080x2340", "Galaxy A54 5G",
          ("35899906", "35243512"), ("8C:F5:A3", "FC:A1:3E"), ("IN", "ID", "TH", "GB")),
    Model("samsung", "SM-A145F", "android", "Android", _ANDROID[1:3], "mt6769", "720x1600", "Galaxy A14",
          ("35410615",), ("5C:0A:5B",), _SEA),
    Model("samsung", "SM-G991U", "android", "Android", _ANDROID[:3], "qcom", "1080x2400", "Galaxy S21 5G",
          ("35386011", "35157211"), ("E8:50:8B", "8C:F5:A3"), ("US",)),
    Model("Google", "Pixel 8", "android", "Android", _ANDROID[:1], "shiba", "1080x2400", "Pixel 8",
          ("35851310", "35307712"), ("3C:5A:B4", "F4:F5:E8"), ("US", "GB")),
    Model("Google", "Pixel 7a", "android", "Android", _ANDROID[:2], "lynx", "1080x2400", "Pixel 7a",
          ("35368511",), ("54:60:09", "3C:5A:B4"), ("US", "GB", "IN")),
    Model("OnePlus", "CPH2449", "android", "Android", _ANDROID[:2], "qcom", "1240x2772", "OnePlus 11",
          ("86984703",), ("94:65:2D", "C0:EE:FB"), ("IN",)),
    Model("realme", "RMX3630", "android", "Android", _ANDROID[1:3], "mt6833", "1080x2400", "realme 10 Pro",
          ("86219306",), ("0C:C6:FD",), _SEA),
    Model("Apple", "iPhone12,1", "ios", "iOS", _IOS[3:], "N104AP", "828x1792", "iPhone 11", ("35392110",), (), ()),
    Model("Apple", "iPhone13,2", "ios", "iOS", _IOS[2:], "D53gAP", "1170x2532", "iPhone 12", ("35384611",), (), ()),
    Model("Apple", "iPhone14,5", "ios", "iOS", _IOS, "D17AP", "1170x2532", "iPhone 13", ("35443211",), (), ()),
    Model("Apple", "iPhone14,7", "ios", "iOS", _IOS[:4], "D27AP", "1170x2532", "iPhone 14", ("35313310",), (), ()),
    Model("Apple", "iPhone15,2", "ios", "iOS", _IOS[:4], "D73AP", "1179x2556", "iPhone 14 Pro", ("35171615",), (), ()),
    Model("Apple", "iPhone15,4", "ios", "iOS", _IOS[:3], "D37AP", "1179x2556", "iPhone 15", ("35437977",), (), ()),
    Model("Apple", "iPhone16,1", "ios", "iOS", _IOS[:3], "D83AP", "1179x2556", "iPhone 15 Pro", ("35328509",), (), ()),
    Model("Apple", "iPhone16,2", "ios", "iOS", _IOS[:3], "D84AP", "1290x2796", "iPhone 15 Pro Max", ("35328609",),
          (), ()),
    Model("Apple", "iPhone17,1", "ios", "iOS", _IOS[:2], "D93AP", "1206x2622", "iPhone 16 Pro", ("35762631",), (), ()),
)

#: Emulators and PC app players. The SDK sees what the image reports.
EMULATORS: tuple[Model, ...] = (
    Model("Google", "sdk_gphone64_x86_64", "android", "Android", ("14", "13"), "ranchu", "1080x2400",
          "sdk_gphone64_x86_64", (), (), (), emulator=True),
    Model("unknown", "Android SDK built for x86", "android", "Android", ("10", "9"), "goldfish", "1080x1920",
          "Android SDK built for x86", (), (), (), emulator=True),
    Model("Genymotion", "Custom Phone", "android", "Android", ("11", "10"), "vbox86", "768x1280", "Custom Phone",
          (), ("08:00:27",), (), emulator=True),
    Model("samsung", "SM-G977N", "android", "Android", ("9", "7.1.2"), "nox", "900x1600", "Galaxy S10 5G",
          ("35410615",), ("08:00:27",), (), emulator=True),
    Model("asus", "ASUS_Z01QD", "android", "Android", ("9",), "intel", "900x1600", "ROG Phone", (), (), (),
          emulator=True),
)

#: What Android emulators report for telephony identifiers when nothing is spoofed.
EMULATOR_IMEI = ("000000000000000", "358240051111110")
EMULATOR_IMSI = "310260000000000"
EMULATOR_ICCID = "89014103211118510720"

PLACEHOLDER_MAC = "02:00:00:00:00:00"
PLACEHOLDER_IMEI = "000000000000000"
ZERO_AD_ID = "00000000-0000-0000-0000-000000000000"

_COMMON_ANDROID = ("com.android.chrome", "com.google.android.gms", "com.android.settings", "com.android.vending",
                   "com.google.android.youtube", "com.android.camera", "com.android.contacts")
APPS: dict[str, tuple[str, ...]] = {
    "CN": ("com.tencent.mm", "com.eg.android.AlipayGphone", "com.ss.android.ugc.aweme", "com.taobao.taobao",
           "com.sina.weibo", "com.xunmeng.pinduoduo", "com.jingdong.app.mall", "com.tencent.mobileqq",
           "com.autonavi.minimap", "com.baidu.searchbox", "tv.danmaku.bili", "com.smile.gifmaker",
           "com.netease.cloudmusic", "com.sankuai.meituan", "com.xingin.xhs", "com.tencent.qqmusic",
           "com.UCMobile", "com.miui.securitycenter", "com.huawei.appmarket"),
    "IN": ("com.whatsapp", "com.instagram.android", "com.phonepe.app", "net.one97.paytm",
           "com.google.android.apps.nbu.paisa.user", "in.swiggy.android", "com.application.zomato",
           "com.flipkart.android", "in.amazon.mShop.android.shopping", "com.jio.myjio", "com.truecaller"),
    "ID": ("com.whatsapp", "com.instagram.android", "com.shopee.id", "com.tokopedia.tkpd", "com.gojek.app",
           "com.grabtaxi.passenger", "id.dana", "ovo.id", "com.zhiliaoapp.musically", "com.bca"),
    "TH": ("jp.naver.line.android", "com.facebook.katana", "com.lazada.android", "com.shopee.th",
           "com.kasikorn.retail.mbanking.wap", "th.co.truemoney.wallet", "com.grabtaxi.passenger",
           "com.zhiliaoapp.musically"),
    "US": ("com.whatsapp", "com.instagram.android", "com.facebook.katana", "com.amazon.mShop.android.shopping",
           "com.ubercab", "com.venmo", "com.chase.sig.android", "com.spotify.music", "com.snapchat.android",
           "com.zhiliaoapp.musically", "com.google.android.apps.maps"),
    "GB": ("com.whatsapp", "com.instagram.android", "co.uk.getmondo", "com.barclays.android.barclaysmobilebanking",
           "com.spotify.music", "com.deliveroo.orderapp", "uk.co.bbc.iplayer", "com.ubercab", "com.tfl.oyster"),
}
COMMON_ANDROID_APPS = _COMMON_ANDROID
ROOT_APPS = ("com.topjohnwu.magisk", "eu.chainfire.supersu")
HOOK_APPS = ("de.robv.android.xposed.installer", "org.lsposed.manager", "re.frida.server",
             "com.lexa.fakegps", "com.lbe.parallel.intl")
FARM_APPS = ("com.touchsprite.android", "com.cyjh.mobileanjian", "com.excelliance.dualaid")
APP_PLAYER_APPS = ("com.bignox.app.store.hd", "com.bluestacks.home", "com.microvirt.launcher")

CHROME = "130.0.0.0"
USER_AGENTS: tuple[tuple[str, str, str], ...] = (
    # (os, os_version, user agent)
    ("Windows", "10", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      f"Chrome/{CHROME} Safari/537.36"),
    ("Windows", "10", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"),
    ("Windows", "10", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      f"Chrome/{CHROME} Safari/537.36 Edg/130.0.2849.68"),
    ("macOS", "10.15.7", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                         "Version/18.1 Safari/605.1.15"),
    ("macOS", "10.15.7", f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                         f"Chrome/{CHROME} Safari/537.36"),
    ("Android", "10", f"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                      f"Chrome/{CHROME} Mobile Safari/537.36"),
    ("Android", "14", "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0"),
    ("iOS", "17.6.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 "
                      "(KHTML, like Gecko) Version/17.6.1 Mobile/15E148 Safari/604.1"),
    ("iOS", "18.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    ("Android", "13", "Mozilla/5.0 (Linux; Android 13; V2241A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 "
                      "MMWEBSDK/20240404 MicroMessenger/8.0.50.2701(0x28003237) NetType/WIFI Language/zh_CN"),
)
#: Scripted browsers used by card testers.
BOT_USER_AGENTS: tuple[tuple[str, str, str], ...] = (
    ("Linux", "x86_64", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "HeadlessChrome/120.0.6099.71 Safari/537.36"),
    ("Windows", "10", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      f"Chrome/{CHROME} Safari/537.36"),
)

CRASHES: dict[str, tuple[tuple[str, str], ...]] = {
    # (exception type, stack trace template); {pkg}, {n}, {pii} are filled in per event
    "android": (
        ("java.lang.NullPointerException",
         "java.lang.NullPointerException: Attempt to invoke virtual method 'java.lang.String "
         "com.example.shop.model.Sku.getId()' on a null object reference\n\tat {pkg}.ui.cart.CartAdapter"
         ".onBindViewHolder(CartAdapter.java:{n})\n\tat androidx.recyclerview.widget.RecyclerView$Adapter"
         ".bindViewHolder(RecyclerView.java:7254)\n\tat android.os.Handler.dispatchMessage(Handler.java:106)"),
        ("java.lang.OutOfMemoryError",
         "java.lang.OutOfMemoryError: Failed to allocate a 31961100 byte allocation with 25165824 free bytes\n"
         "\tat android.graphics.BitmapFactory.nativeDecodeStream(Native Method)\n\tat {pkg}.image.Loader"
         ".decode(Loader.kt:{n})\n\tat java.util.concurrent.ThreadPoolExecutor.runWorker("
         "ThreadPoolExecutor.java:1145)"),
        ("java.lang.IllegalStateException",
         "java.lang.IllegalStateException: checkout failed for user {pii}\n\tat {pkg}.pay.CheckoutPresenter"
         ".submit(CheckoutPresenter.kt:{n})\n\tat kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)"),
        ("android.app.RemoteServiceException",
         "android.app.RemoteServiceException: Bad notification posted from package {pkg}: Couldn't create icon\n"
         "\tat android.app.ActivityThread$H.handleMessage(ActivityThread.java:{n})"),
    ),
    "ios": (
        ("EXC_BAD_ACCESS",
         "Exception Type: EXC_BAD_ACCESS (SIGSEGV)\nThread 0 Crashed:\n0 libobjc.A.dylib objc_msgSend + 16\n"
         "1 Shop 0x0000000104a3c2f0 CartViewController.tableView(_:cellForRowAt:) + {n}\n2 UIKitCore 0x1a2b3c4d5"),
        ("NSInvalidArgumentException",
         "*** Terminating app due to uncaught exception 'NSInvalidArgumentException', reason: '-[__NSCFString "
         "objectForKey:]: unrecognized selector' user={pii}\n0 CoreFoundation __exceptionPreprocess + 164\n"
         "1 Shop ProfileViewModel.load() + {n}"),
        ("EXC_CRASH",
         "Exception Type: EXC_CRASH (SIGABRT)\nThread 3 Crashed:\n0 libsystem_kernel.dylib __pthread_kill + 8\n"
         "1 Shop ImageCache.store(_:) + {n}"),
    ),
}
# fmt: on
ANR_TRACE = (
    "ANR in {pkg} (com.example.shop/.MainActivity)\nReason: Input dispatching timed out (Waiting to send "
    'non-key event)\n"main" prio=5 tid=1 Blocked\n\tat {pkg}.db.OrderDao.query(OrderDao.java:{n})'
)
