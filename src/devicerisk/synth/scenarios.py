"""Who is in the data: legitimate accounts (with fraud look-alikes) and the planted fraud scenarios.

The result is a :class:`Population`: accounts with precomputed devices and networks, plus a list
of scheduled actions (registrations, takeovers, bursts, farm rounds) the generator replays in time.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from datetime import date

from devicerisk.synth import ids, payments
from devicerisk.synth.clock import DAY_MS, HOUR_MS, Clock
from devicerisk.synth.config import SCENARIO_MIN_ACCOUNTS, SynthConfig
from devicerisk.synth.devices import EMULATORS
from devicerisk.synth.payments import split as _split
from devicerisk.synth.population import Account, Device, DeviceFactory, NetPlan, fork_device
from devicerisk.synth.world import COUNTRIES, DATACENTER_V4, DATACENTER_V6, DOC_V4, DOC_V6, Country

#: A scheduled action: (time ms, tie-break seq, kind, account index, argument).
Action = tuple[int, int, str, int, object]

_EXCLUSIVE_ROLES = (  # (tag, share of legitimate accounts); one of these per account at most
    ("family_device", 0.04),
    ("traveller", 0.03),
    ("old_version_crash", 0.03),
    ("rooted_legit", 0.015),
    ("small_purchase_burst", 0.02),
    ("new_phone", 0.015),
    ("shared_network", 0.02),
    ("app_player", 0.004),
    ("bulk_shipper", 0.004),
    ("pickup_kiosk", 0.015),
    ("expat", 0.02),
    ("rent_payer", 0.03),
    ("big_purchase", 0.015),
)
_LIFECYCLE = (  # independent of the above
    ("registered_in_window", 0.10),
    ("minor_with_guardian", 0.01),
    ("minor_without_guardian", 0.01),
    ("consent_withdrawn", 0.01),
    ("cancelled", 0.007),
    ("password_change", 0.01),
    ("marketing_toggle", 0.02),
    ("age_redeclared", 0.02),
)


@dataclass
class Population:
    accounts: list[Account]  # the config's accounts first, then anonymous visitors
    n_accounts: int
    schedule: list[Action]
    farms: list[list[int]] = field(default_factory=list)
    hijacked: list[tuple[int, int, int]] = field(default_factory=list)  # (merchant index, start ms, end ms)


def allocate(config: SynthConfig) -> dict[str, int]:
    """Fraud accounts per scenario: the fraud rate split by weight, each at least its minimum."""
    mix = config.mix()
    if config.fraud_rate == 0 or not mix:
        return {}
    target = round(config.accounts * config.fraud_rate)
    alloc = {k: max(SCENARIO_MIN_ACCOUNTS[k], round(target * w)) for k, w in mix.items()}
    # tiny populations cannot host every scenario: drop the lightest ones until half the accounts stay legit
    for name in sorted(mix, key=lambda k: (mix[k], k)):
        if sum(alloc.values()) <= config.accounts // 2:
            break
        del alloc[name]
    return alloc


class Builder:
    """Creates accounts and their schedules with one seeded RNG, in a fixed order."""

    def __init__(self, config: SynthConfig, rng: random.Random, clock: Clock, start_ms: int) -> None:
        self.config = config
        self.rng = rng
        self.f = DeviceFactory(rng, clock)
        self.start_ms = start_ms
        self.end_ms = start_ms + config.days * DAY_MS
        self.accounts: list[Account] = []
        self.schedule: list[Action] = []
        self.farms: list[list[int]] = []
        self.hijacked: list[tuple[int, int, int]] = []
        self._ids = iter(rng.sample(range(10**9, 10**10), config.accounts))
        self._countries = list(COUNTRIES.values())
        self._weights = [c.weight for c in self._countries]
        self.dc_pool = ids.IpPool(DATACENTER_V4 + DATACENTER_V6)
        self.dc_v4 = ids.IpPool(DATACENTER_V4)
        self.doc_pool = ids.IpPool(DOC_V4 + DOC_V6)

    # -- helpers ---------------------------------------------------------------------------------

    def at(self, ms: int, kind: str, idx: int, arg: object = None) -> None:
        self.schedule.append((ms, len(self.schedule), kind, idx, arg))

    def when(self, lo: float, hi: float) -> int:
        """A random time between fractions ``lo`` and ``hi`` of the window."""
        span = self.end_ms - self.start_ms
        return self.start_ms + int(span * self.rng.uniform(lo, hi))

    def spread(self, k: int, lo: float, hi: float) -> list[int]:
        """``k`` random times, one in each of ``k`` equal parts of fractions ``lo`` to ``hi`` of the window: the
        incidents of a scenario fall all over it (training and test alike), not by chance in a few weeks."""
        step = (hi - lo) / max(1, k)
        return [self.when(lo + i * step, lo + (i + 1) * step) for i in range(k)]

    def country(self, codes: tuple[str, ...] | None = None) -> Country:
        if codes:
            return COUNTRIES[self.rng.choice(codes)]
        return self.rng.choices(self._countries, self._weights)[0]

    def account(self, country: Country, devices: list[Device], net: NetPlan, minor: bool = False) -> Account:
        r = self.rng
        acc = Account(len(self.accounts), str(next(self._ids)), country, devices, net)
        year = r.randint(2009, 2013) if minor else min(2007, max(1955, int(r.gauss(1992, 10))))
        birth = date(year, r.randint(1, 12), r.randint(1, 28))
        acc.birth_year = year
        acc.phone = ids.phone_formats(r, country)
        acc.real_name = ids.real_name(r, country)
        acc.id_number = ids.id_number(r, country, birth)
        acc.spd = min(8.0, max(0.1, r.lognormvariate(math.log(1.3), 0.7)))
        acc.txn_p = r.uniform(0.08, 0.3)
        acc.amount_scale = r.lognormvariate(0, 0.4)
        acc.bank_account = ids.bank_account(r, country)
        for d in devices:
            acc.tags |= d.tags
        self.accounts.append(acc)
        return acc

    def register(self, acc: Account, ms: int) -> None:
        acc.created_ms = ms
        acc.active = False
        acc.tags.add("registered_in_window")
        self.at(ms, "register", acc.idx)

    def foreign_pool(self, home: Country) -> ids.IpPool:
        other = self.rng.choice([c for c in self._countries if c.code != home.code])
        return self.f.pools[other.code]

    # -- legitimate accounts -----------------------------------------------------------------------

    def legit(self, n: int) -> None:
        r = self.rng
        units: list[tuple[str | None, int]] = []  # (role, accounts); groups share a device or a network
        for tag, share in _EXCLUSIVE_ROLES:
            grouped = {
                "family_device": (2, 4),
                "shared_network": (4, 8),
                "pickup_kiosk": (20, 60),
                "rent_payer": (15, 50),
            }.get(tag)
            k = round(n * share)
            if n >= 60:
                k = max(k, grouped[0] if grouped else 1)
            if grouped:
                units += [(tag, size) for size in _split(k, grouped[0], grouped[1], r)] if k >= grouped[0] else []
            else:
                units += [(tag, 1)] * k
        used = 0
        for i, (_, size) in enumerate(units):
            if used + size > n:
                units = units[:i]
                break
            used += size
        units += [(None, 1)] * (n - used)
        r.shuffle(units)
        life: list[set[str]] = [set() for _ in range(n)]
        for tag, share in _LIFECYCLE:
            for i in r.sample(range(n), min(n, max(1 if n >= 60 else 0, round(n * share)))):
                life[i].add(tag)
        i = 0
        for role, size in units:
            if role == "family_device":
                self._family(life[i : i + size])
            elif role == "shared_network":
                self._office(life[i : i + size])
            elif role == "pickup_kiosk":
                self._kiosk(life[i : i + size])
            elif role == "rent_payer":
                payments.rent(self, life[i : i + size])
            else:
                self._legit_one(role, life[i])
            i += size

    def _legit_one(
        self, role: str | None, life: set[str], country: Country | None = None, register_at: int | None = None
    ) -> Account:
        r, f = self.rng, self.f
        country = country or self.country()
        model = None
        # an expat's phone keeps the SIM of home but uses the time zone and language of where they live
        home = self.country(tuple(c for c in COUNTRIES if c != country.code)) if role == "expat" else None
        if role in ("rooted_legit", "app_player", "expat"):
            platform = "android"
            model = r.choice(EMULATORS[3:]) if role == "app_player" else None
        else:
            platform = "web" if r.random() < 0.04 else f.platform_for(country)
        dev = f.device(
            country,
            platform,
            model=model,
            old_version=role == "old_version_crash",
            rooted=role == "rooted_legit",
            sim_home=home,
        )
        acc = self.account(country, [dev], f.home_net(country), minor=_minor(life))
        if register_at is not None:
            self.register(acc, register_at)
        if role:
            acc.tags.add(role)
        if platform != "web" and r.random() < 0.15:
            acc.web, acc.web_share = f.browser(country), r.uniform(0.1, 0.4)
        if role == "old_version_crash":
            acc.crash_p = r.uniform(0.15, 0.35)
        elif role == "traveller":
            t0 = self.when(0.05, 0.6)
            acc.net.trip = (t0, t0 + r.randint(2, 5) * DAY_MS, self.foreign_pool(country))
        elif role == "small_purchase_burst":
            for _ in range(r.randint(1, 2)):
                self.at(self.when(0.05, 0.95), "burst", acc.idx, "legit")
        elif role == "new_phone":
            new_platform = platform if platform == "web" or r.random() < 0.8 else f.platform_for(country)
            self.at(self.when(0.2, 0.8), "new_phone", acc.idx, f.device(country, new_platform, clear_ids=True))
        elif role == "big_purchase":
            payments.big_purchase(self, acc)
        self._lifecycle(acc, life)
        if role == "bulk_shipper":  # a small business paying a day's shipping labels in one run, most days
            first = max(self.start_ms, acc.created_ms or self.start_ms)
            for day in range(first, self.end_ms - HOUR_MS, DAY_MS):
                if r.random() < 0.5:
                    self.at(min(day + r.randint(1, 10) * HOUR_MS, self.end_ms - 1), "burst", acc.idx, "bulk")
        return acc

    def _lifecycle(self, acc: Account, life: set[str]) -> None:
        acc.tags |= life - {"password_change", "marketing_toggle", "age_redeclared"}
        reg = acc.created_ms
        if "registered_in_window" in life and reg is None:
            reg = self.when(0.0, 0.85)
            self.register(acc, reg)
        lo = 0.0 if reg is None else (reg - self.start_ms) / (self.end_ms - self.start_ms) + 0.01
        if (_minor(life) and reg is None) or "age_redeclared" in life:
            self.at(self.when(lo, max(lo, 0.95)), "age", acc.idx, "minor_with_guardian" in life)
        if "consent_withdrawn" in life:
            self.at(self.when(lo, max(lo, 0.9)), "consent", acc.idx, ("risk_control", False))
        if "marketing_toggle" in life:
            self.at(self.when(lo, max(lo, 0.9)), "consent", acc.idx, ("marketing", self.rng.random() < 0.4))
        if "password_change" in life:
            self.at(self.when(lo, max(lo, 0.95)), "pwchange", acc.idx)
        if "cancelled" in life:
            self.at(self.when(max(lo, 0.3), max(lo, 0.9)), "cancel", acc.idx)

    def _family(self, lives: list[set[str]]) -> None:
        group = f"family-{len(self.accounts)}"
        first = self._legit_one("family_device", lives[0])
        first.group = group
        for life in lives[1:]:
            acc = self.account(first.country, [first.devices[0]], first.net, minor=_minor(life))
            acc.tags.add("family_device")
            acc.group = group
            self._lifecycle(acc, life)

    def _office(self, lives: list[set[str]]) -> None:
        r = self.rng
        country = self.country()
        base = self.f.v4[country.code].subnet24(r)
        t0 = self.when(0.0, 0.7)
        group = f"office-{len(self.accounts)}"
        for life in lives:
            reg = t0 + r.randint(0, 36) * HOUR_MS
            acc = self._legit_one(None, life - {"registered_in_window"}, country, register_at=reg)
            acc.net.home_ip = ids.int_to_ip(base + r.randint(2, 20), 4)
            acc.net.wifi_p = 0.8
            acc.tags.add("shared_network")
            acc.group = group

    def _kiosk(self, lives: list[set[str]]) -> None:
        """Customers of one parcel pickup point who sign in on its shared tablet now and then: many
        accounts on one device, as in a device farm, but each also on a phone of its own."""
        country = self.country()
        site = self.f.home_net(country)  # the pickup point's own connection
        kiosk = dataclasses.replace(self.f.device(country, "android"), shared=True, site=site)
        group = f"kiosk-{len(self.accounts)}"
        for life in lives:
            acc = self._legit_one(None, life, country)
            acc.web, acc.web_share = kiosk, self.rng.uniform(0.3, 0.7)
            acc.tags |= kiosk.tags | {"pickup_kiosk"}  # its identifier quirks are seen on every user
            acc.group = group

    # -- fraud scenarios ---------------------------------------------------------------------------

    def device_farm(self, n: int) -> None:
        r, f = self.rng, self.f
        sizes = _split(n, 10, 25, r)
        for size, first in zip(sizes, self.spread(len(sizes), 0.0, 0.85), strict=True):
            country = self.country(("CN", "CN", "ID", "IN"))
            base = f.device(country, "android", rooted=r.random() < 0.3, farm=True)
            reset = r.random() < 0.6  # the farm tool resets the OAID per account
            ip = f.v4[country.code].address(r)
            members = []
            group = f"farm-{len(self.farms)}"
            for _ in range(size):
                net = NetPlan(home_ip=ip, cell=f.pools[country.code], fixed_type="wifi")
                acc = self.account(country, [fork_device(base, r) if reset else base], net)
                acc.scenario, acc.group, acc.spd, acc.txn_p = "device_farm", group, 0.15, 0.05
                members.append(acc.idx)
            for k, idx in enumerate(members):  # the operator registers the accounts one after another
                acc = self.accounts[idx]
                acc.created_ms = acc.fraud_since_ms = first + k * 150_000  # updated when the round runs
                acc.active = False
                acc.tags.add("registered_in_window")
            farm = len(self.farms)
            self.farms.append(members)
            t = first
            while t < self.end_ms:
                self.at(t, "farm_round", members[0], farm)
                t += int(r.uniform(5, 14) * HOUR_MS)

    def emulator(self, n: int) -> None:
        r, f = self.rng, self.f
        left = n
        while left > 0:
            clones = min(left, r.choice((1, 1, 2, 3)))  # one image cloned for several accounts
            country = self.country(("CN", "ID", "IN", "TH"))
            dev = f.device(country, "android", model=r.choice(EMULATORS[:3]), old_version=r.random() < 0.3)
            pool = self.doc_pool if r.random() < 0.1 else self.dc_pool
            group = f"emu-{len(self.accounts)}"
            for _ in range(clones):
                net = NetPlan(home_ip=pool.address(r), cell=pool, fixed_type="wifi")
                acc = self.account(country, [dev], net)
                acc.scenario, acc.group, acc.spd, acc.txn_p = "emulator", group, r.uniform(1.5, 4), 0.4
                self.register(acc, self.when(0.0, 0.8))
                acc.fraud_since_ms = acc.created_ms
            left -= clones

    def rooted_hooked(self, n: int) -> None:
        r, f = self.rng, self.f
        for _ in range(n):
            country = self.country()
            dev = f.device(country, "android", rooted=True, hooked=True)
            acc = self.account(country, [dev], f.home_net(country))
            acc.scenario, acc.txn_p, acc.amount_scale = "rooted_hooked", 0.35, r.uniform(1.5, 4)
            if r.random() < 0.5:
                self.register(acc, self.when(0.0, 0.7))
            acc.fraud_since_ms = acc.created_ms if acc.created_ms is not None else self.start_ms

    def account_takeover(self, n: int) -> None:
        r, f = self.rng, self.f
        for _ in range(n):
            acc = self._legit_one(None, set())
            acc.scenario = "account_takeover"
            t = self.when(0.1, 0.9)  # after some honest history; in every week of a month
            acc.fraud_since_ms = t
            attacker_country = self.country(tuple(c for c in COUNTRIES if c != acc.country.code))
            model = r.choice(EMULATORS[:3]) if r.random() < 0.2 else None
            dev = f.device(attacker_country, "android", model=model)
            pool = self.dc_pool if r.random() < 0.5 else f.pools[attacker_country.code]
            net = NetPlan(home_ip=pool.address(r), cell=pool, fixed_type=r.choice(("wifi", "4g")))
            # most owners get the account back within hours; the rest give it up to the attacker
            self.at(t, "ato", acc.idx, (dev, net, r.random() < 0.7))

    def card_testing(self, n: int) -> None:
        r, f = self.rng, self.f
        for _ in range(n):
            country = self.country(("US", "US", "GB", "CN", "ID"))
            u = r.random()
            if u < 0.7:
                dev = f.browser(country, bot=u < 0.5)
            else:
                dev = f.device(country, "android", model=r.choice(EMULATORS[:3]) if u < 0.85 else None)
            net = NetPlan(home_ip=self.dc_pool.address(r), cell=self.dc_pool, wifi_p=0.5)
            acc = self.account(country, [dev], net)
            acc.scenario, acc.spd, acc.txn_p = "card_testing", 0.6, 0.05
            if r.random() < 0.7:
                self.register(acc, self.when(0.0, 0.7))
            acc.fraud_since_ms = acc.created_ms if acc.created_ms is not None else self.start_ms
            lo = (acc.fraud_since_ms - self.start_ms) / (self.end_ms - self.start_ms) + 0.01
            for _ in range(r.randint(1, 3)):
                self.at(self.when(lo, max(lo, 0.97)), "burst", acc.idx, "card_testing")

    def promo_abuse(self, n: int) -> None:
        r, f = self.rng, self.f
        sizes = _split(n, 5, 12, r)
        for size, t in zip(sizes, self.spread(len(sizes), 0.02, 0.97), strict=True):
            country = self.country(("CN", "CN", "ID", "IN"))
            dc = r.random() < 0.4
            base = (self.dc_v4 if dc else f.v4[country.code]).subnet24(r)
            model = f.model_for(country, "android")
            group = f"promo-{len(self.accounts)}"
            for _ in range(size):
                m = r.choice(EMULATORS[:3]) if r.random() < 0.25 else model
                dev = f.device(country, "android", model=m, lat=r.random() < 0.5)
                net = NetPlan(
                    home_ip=ids.int_to_ip(base + r.randint(2, 254), 4),
                    cell=f.pools[country.code],
                    fixed_type="wifi" if dc else "4g",
                )
                acc = self.account(country, [dev], net)
                acc.scenario, acc.group, acc.spd, acc.txn_p = "promo_abuse", group, 0.08, 0.05
                t += int(r.uniform(1, 15) * 60_000)
                self.register(acc, t)
                acc.fraud_since_ms = t

    def visitors(self, n: int) -> None:
        r, f = self.rng, self.f
        for _ in range(n):
            country = self.country()
            dev = f.device(country, "web" if r.random() < 0.3 else f.platform_for(country), traceable=False)
            acc = Account(len(self.accounts), None, country, [dev], f.home_net(country), spd=0.5, txn_p=0.0)
            self.accounts.append(acc)


def _minor(life: set[str]) -> bool:
    return bool(life & {"minor_with_guardian", "minor_without_guardian"})


def build(config: SynthConfig, rng: random.Random, clock: Clock, start_ms: int) -> Population:
    """The whole population, in a fixed order so the same seed gives the same people."""
    b = Builder(config, rng, clock, start_ms)
    alloc = allocate(config)
    b.legit(config.accounts - sum(alloc.values()))
    for name, n in alloc.items():
        if hasattr(b, name):
            getattr(b, name)(n)
        else:  # a payment scenario
            getattr(payments, name)(b, n)
    b.visitors(max(2, config.accounts // 25))
    return Population(b.accounts, config.accounts, b.schedule, b.farms, b.hijacked)
