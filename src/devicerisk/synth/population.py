"""Devices, networks and accounts: the precomputed state that sessions draw events from.

Everything an event needs that does not change per event is serialised here once (the ``app``
and ``device`` objects, the device_info payload, the installed-app list), so the hot loop only
concatenates text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import orjson

from devicerisk.synth import ids
from devicerisk.synth.clock import JS_UTC, MILLIS, SECONDS, Clock
from devicerisk.synth.devices import (
    APP_PLAYER_APPS,
    APPS,
    COMMON_ANDROID_APPS,
    EMULATOR_ICCID,
    EMULATOR_IMEI,
    EMULATOR_IMSI,
    FARM_APPS,
    HOOK_APPS,
    MODELS,
    PLACEHOLDER_IMEI,
    PLACEHOLDER_MAC,
    ROOT_APPS,
    ZERO_AD_ID,
    Model,
)
from devicerisk.synth.world import APP_PACKAGE, APP_VERSIONS, COUNTRIES, OLD_VERSIONS, Country


def dumps(obj: object) -> str:
    """Compact JSON as ``str``: lines are assembled as text and encoded once per write."""
    return orjson.dumps(obj).decode()


@dataclass(slots=True)
class Device:
    """One app install on one handset (or one browser), as seen in the event envelope."""

    platform: str
    tz: int
    time_style: int
    frags: tuple[str, ...]  # '"app":{..},"device":{..}' variants; [1] is used with probability alt_p
    alt_p: float
    info: str  # the device_info payload
    language: str
    installed: tuple[str, ...]  # empty where the platform cannot list apps
    installed_json: str
    op_tail: str  # the end of every operation payload: language (and user agent on the web)
    ua: str | None
    old_version: bool
    tags: frozenset[str]
    shared: bool = False  # a public device (a kiosk): every user signs in each time
    site: NetPlan | None = None  # a public device's own network, whoever uses it


@dataclass(slots=True)
class NetPlan:
    """Where an account's sessions come from: home Wi-Fi, mobile data, or a fixed address."""

    home_ip: str
    cell: ids.IpPool
    wifi_p: float = 0.6
    fixed_type: str | None = None  # set: always home_ip with this network type (farms, emulators)
    trip: tuple[int, int, ids.IpPool] | None = None  # (start ms, end ms, foreign pool)


@dataclass(slots=True)
class Account:
    """One account (or one anonymous visitor when ``account_id`` is None) and its behaviour knobs."""

    idx: int
    account_id: str | None
    country: Country
    devices: list[Device]
    net: NetPlan
    spd: float = 1.6  # sessions per day
    txn_p: float = 0.2  # chance of a transaction per session
    crash_p: float = 0.01
    web: Device | None = None
    web_share: float = 0.0
    created_ms: int | None = None  # register time inside the window; None: registered before it
    phone: tuple[str, str, str] = ("", "", "")
    real_name: str = ""
    id_number: str = ""
    birth_year: int = 1990
    scenario: str | None = None
    group: str | None = None
    tags: set[str] = field(default_factory=set)
    fraud_since_ms: int | None = None
    cancelled: bool = False
    last_applist_day: int = -1
    amount_scale: float = 1.0
    bank_account: str = ""
    labelled: bool = False  # the fraud team has decided whether it reports on this account
    report_ms: int | None = None  # when the fraud team's report on the account itself comes in
    victim_of: str | None = None  # a payment scenario done to this honest account
    fraud_until_ms: int | None = None  # a takeover's end: the victim got the account back
    active: bool = True  # False until the account registers inside the window
    blocked: bool = False  # a fraudster's account, closed once a fraud report on it came in
    id_json: str = "null"  # account_id as JSON, serialised once

    def __post_init__(self) -> None:
        self.id_json = dumps(self.account_id)


_CELL_TYPES = ("4g", "4g", "4g", "5g", "5g", "3g")


class DeviceFactory:
    """Builds devices with realistic identifier mixes for each platform and market."""

    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self.rng = rng
        self.clock = clock
        self.pools = {c.code: ids.IpPool(c.ipv4 + c.ipv6) for c in COUNTRIES.values()}
        self.v4 = {c.code: ids.IpPool(c.ipv4) for c in COUNTRIES.values()}

    def model_for(self, country: Country, platform: str) -> Model:
        choices = [m for m in MODELS if m.platform == platform and (not m.markets or country.code in m.markets)]
        return self.rng.choice(choices)

    def platform_for(self, country: Country) -> str:
        return "android" if self.rng.random() < country.android_share else "ios"

    def home_net(self, country: Country) -> NetPlan:
        r = self.rng
        # a third of SDKs report the LAN address of the Wi-Fi interface instead of the public one
        home = (
            f"192.168.{r.choice((0, 1, 1, 3, 31))}.{r.randint(2, 254)}"
            if r.random() < 0.3
            else self.v4[country.code].address(r)
        )
        return NetPlan(home_ip=home, cell=self.pools[country.code], wifi_p=r.uniform(0.3, 0.85))

    def device(
        self,
        country: Country,
        platform: str,
        *,
        model: Model | None = None,
        old_version: bool = False,
        rooted: bool = False,
        hooked: bool = False,
        farm: bool = False,
        lat: bool | None = None,
        clear_ids: bool = False,
        traceable: bool = True,
        sim_home: Country | None = None,
    ) -> Device:
        """A handset install. ``clear_ids``: the SDK gets no telephony IDs (fresh install on a new OS);
        ``traceable``: False for devices without an account in the truth file, which get no planted bad IMEI;
        ``sim_home``: the SIM's country when it is not ``country`` (whose time zone and language the device uses)."""
        r = self.rng
        if platform == "web":
            return self.browser(country)
        model = model or self.model_for(country, platform)
        emulator = model.emulator
        version = r.choice(OLD_VERSIONS[platform] if old_version else APP_VERSIONS[platform])
        os_version = r.choice(model.os_versions)
        tags: set[str] = set()
        dev: dict[str, str] = {
            "model": model.model,
            "manufacturer": model.manufacturer,
            "os": model.os,
            "os_version": os_version,
        }
        alt: dict[str, str] = {}
        if platform == "ios":
            zero = r.random() < 0.6 if lat is None else lat  # most iOS users decline App Tracking Transparency
            idfa = ZERO_AD_ID if zero else ids.uuid4(r).upper()
            dev["idfa"] = idfa.lower() if not zero and r.random() < 0.2 else idfa
            dev["idfv"] = ids.uuid4(r).upper()
            tags.update(("limited_ad_tracking",) if zero else ())
        else:
            self._android_ids(dev, alt, tags, sim_home or country, model, emulator, lat, clear_ids, traceable)
        app = {"platform": platform, "version": version}
        frag = f'"app":{dumps(app)},"device":{dumps(dev)}'
        frags = (frag,)
        if alt:
            frags = (frag, f'"app":{dumps(app)},"device":{dumps({**dev, **alt})}')
        tz_name = r.choice(country.tzs)
        language = r.choice(country.languages)
        installed: tuple[str, ...] = ()
        if platform == "android":
            installed = self._app_list(country, rooted, hooked, farm, emulator, model)
        info = {
            "language": language,
            "timezone": tz_name,
            "hardware": model.hardware,
            "screen": model.screen,
            "rooted": rooted,
            "debuggable": emulator or (rooted and r.random() < 0.4),
            "adb_enabled": emulator or rooted or r.random() < 0.03,
            "developer_mode": emulator or rooted or r.random() < 0.06,
        }
        if r.random() < 0.7 and not emulator:
            info["device_name"] = self._device_name(country, model)
        return Device(
            platform=platform,
            tz=self.clock.tz_index(tz_name),
            time_style=SECONDS if old_version or r.random() < 0.1 else MILLIS,
            frags=frags,
            alt_p=0.3 if alt else 0.0,
            info=dumps(info),
            language=language,
            installed=installed,
            installed_json=dumps(list(installed)),
            op_tail=f',"language":{dumps(language)}}}',
            ua=None,
            old_version=old_version,
            tags=frozenset(tags),
        )

    def _android_ids(
        self,
        dev: dict[str, str],
        alt: dict[str, str],
        tags: set[str],
        country: Country,
        model: Model,
        emulator: bool,
        lat: bool | None,
        clear_ids: bool,
        traceable: bool,
    ) -> None:
        r = self.rng
        carrier = r.choice(country.carriers)
        # IMEI: readable on older Android and privileged installs; Android 10+ returns nothing or zeros
        u = r.random()
        if emulator:
            if u < 0.8:
                dev["imei"] = r.choice(EMULATOR_IMEI)
                if dev["imei"] == PLACEHOLDER_IMEI:
                    tags.add("placeholder_imei")
        elif clear_ids or u < 0.35:
            pass
        elif u < 0.45:
            dev["imei"] = PLACEHOLDER_IMEI
            tags.add("placeholder_imei")
        else:
            real = ids.imei(r, r.choice(model.tacs))
            v = r.random()
            if v < 0.03 and traceable:
                real = ids.corrupt_check_digit(real)
                tags.add("invalid_imei")
            elif v < 0.15:  # some SDK versions read the IMEISV; same handset, two strings
                alt["imei"] = ids.imeisv(real, r.randint(1, 99))
                tags.add("imeisv")
            elif v < 0.2:  # and a few only ever report the IMEISV
                real = ids.imeisv(real, r.randint(1, 99))
                tags.add("imeisv")
            dev["imei"] = real
            if carrier.cdma and r.random() < 0.7:
                dev["meid"] = ids.meid(r)
        # MAC: universal (vendor OUI), randomised, or Android's 02:00:00:00:00:00 placeholder
        u = r.random()
        style = 0 if (s := r.random()) < 0.6 else (1 if s < 0.85 else 2)
        if emulator:
            if model.ouis:
                dev["mac"] = ids.format_mac(ids.mac_octets(r, model.ouis[0]), style)
            else:
                dev["mac"] = PLACEHOLDER_MAC
                tags.add("placeholder_mac")
        elif u < 0.35 and not clear_ids:
            dev["mac"] = ids.format_mac(ids.mac_octets(r, r.choice(model.ouis)), style)
            if r.random() < 0.1:  # two SDKs in one app print the same MAC differently
                octets = bytes.fromhex(dev["mac"].replace(":", "").replace("-", "").replace(".", ""))
                alt["mac"] = ids.format_mac(octets, (style + 1) % 3)
        elif u < 0.65:
            dev["mac"] = ids.format_mac(ids.mac_octets(r, None), style)
            tags.add("randomised_mac")
        elif u < 0.87:
            dev["mac"] = PLACEHOLDER_MAC
            tags.add("placeholder_mac")
        # OAID: the Chinese MSA advertising ID; all zeros when the user limits ad tracking
        if country.code == "CN" and not emulator and r.random() < 0.9:
            zero = r.random() < 0.15 if lat is None else lat
            oaid = ZERO_AD_ID if zero else ids.oaid(r, model.manufacturer)
            dev["oaid"] = oaid.upper() if not zero and r.random() < 0.2 else oaid
            tags.update(("limited_ad_tracking",) if zero else ())
        dev["android_id"] = ids.hexdigits(r, 16)
        if emulator:
            if model.hardware in ("ranchu", "goldfish"):
                dev["imsi"], dev["iccid"] = EMULATOR_IMSI, EMULATOR_ICCID
        elif not clear_ids and r.random() < 0.6:
            dev["imsi"] = ids.imsi(r, carrier.mcc, carrier.mnc)
            dev["iccid"] = ids.iccid(r, carrier.iccid_prefix, 20 if country.code == "CN" or r.random() < 0.5 else 19)

    def _app_list(
        self, country: Country, rooted: bool, hooked: bool, farm: bool, emulator: bool, model: Model
    ) -> tuple[str, ...]:
        r = self.rng
        local = APPS[country.code]
        apps = [APP_PACKAGE, *r.sample(COMMON_ANDROID_APPS, r.randint(3, len(COMMON_ANDROID_APPS)))]
        apps += r.sample(local, r.randint(min(3, len(local)), len(local)))
        if rooted:
            apps.append(ROOT_APPS[0] if r.random() < 0.85 else ROOT_APPS[1])
            if r.random() < 0.3:
                apps.append("org.lsposed.manager")
        if hooked:
            apps += r.sample(HOOK_APPS, r.randint(2, len(HOOK_APPS)))
        if farm:
            apps += r.sample(FARM_APPS, r.randint(1, len(FARM_APPS)))
        if emulator and model.hardware in ("nox", "intel", "vbox86"):
            apps.append(r.choice(APP_PLAYER_APPS))
        return tuple(dict.fromkeys(apps))  # drop duplicates, keep order

    def _device_name(self, country: Country, model: Model) -> str:
        r = self.rng
        if model.platform == "ios":
            return "iPhone" if r.random() < 0.7 else f"{r.choice(country.given)}'s iPhone"
        if country.code == "CN" and r.random() < 0.5:
            return f"{r.choice(country.family)}{r.choice(country.given)}的手机"
        return model.market_name if r.random() < 0.6 else f"{r.choice(country.given)}'s {model.market_name}"

    def browser(self, country: Country, bot: bool = False) -> Device:
        from devicerisk.synth.devices import BOT_USER_AGENTS, USER_AGENTS

        r = self.rng
        os_name, os_version, ua = r.choice(BOT_USER_AGENTS if bot else USER_AGENTS)
        app = {"platform": "web", "version": r.choice(APP_VERSIONS["web"])}
        frag = f'"app":{dumps(app)},"device":{dumps({"os": os_name, "os_version": os_version})}'
        language = r.choice(country.languages).replace("_", "-")
        tz_name = r.choice(country.tzs)
        return Device(
            platform="web",
            tz=self.clock.tz_index(tz_name),
            time_style=JS_UTC,
            frags=(frag,),
            alt_p=0.0,
            info="",
            language=language,
            installed=(),
            installed_json="[]",
            op_tail=f',"language":{dumps(language)},"user_agent":{dumps(ua)}}}',
            ua=ua,
            old_version=False,
            tags=frozenset(),
        )


def fork_device(base: Device, rng: random.Random) -> Device:
    """The same handset after a device-farm tool reset its OAID (all other identifiers unchanged)."""
    new_oaid: str | None = None
    frags = []
    for frag in base.frags:
        head, dev_json = frag.split(',"device":', 1)
        dev = orjson.loads(dev_json)
        if "oaid" in dev:
            new_oaid = new_oaid or ids.oaid(rng, dev["manufacturer"])
            dev["oaid"] = new_oaid
        frags.append(f'{head},"device":{dumps(dev)}')
    return replace(base, frags=tuple(frags))
