"""What accounts do: ordinary app sessions and the scheduled scenario actions.

Each function appends events to the emitter's buffer; the generator sorts them per time slice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from devicerisk.synth import ids
from devicerisk.synth.devices import ANR_TRACE, CRASHES
from devicerisk.synth.emitter import Emitter
from devicerisk.synth.payments import Pay, pay_amount
from devicerisk.synth.population import Account, Device, NetPlan, dumps
from devicerisk.synth.world import APP_PACKAGE, CARD_ISSUERS, PAGES, PROMO_PAGES, SECURITY_PAGES, WEB_PAGES

_log = math.log
_SEC = 1000
_MIN = 60_000
_HOUR = 3_600_000


def _split_pages(pages: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    return tuple((p.removesuffix("{n}"), p.endswith("{n}")) for p in pages)


_APP_PAGES = _split_pages(PAGES)
_WEB_PAGES = _split_pages(WEB_PAGES)


class Behaviour:
    """Sessions and scenario handlers over one :class:`Emitter`."""

    def __init__(
        self,
        em: Emitter,
        accounts: list[Account],
        farms: list[list[int]],
        activate: Callable[[Account], None],
        schedule: Callable[[int, str, int, object], None],
    ) -> None:
        self.em = em
        self.rng: random.Random = em.rng
        self.accounts = accounts
        self.farms = farms
        self.activate = activate  # start (or re-rate) an account's Poisson sessions
        self.schedule = schedule  # add a follow-up action

    # -- building blocks ---------------------------------------------------------------------------

    def page(self, dev: Device) -> str:
        r = self.rng
        pages = _WEB_PAGES if dev.platform == "web" else _APP_PAGES
        base, numbered = pages[int(r.random() * len(pages))]
        return f"{base}{int(r.random() * 9_900_000) + 100_000}" if numbered else base

    def op(
        self, t: int, env: str, dev: Device, acc: Account, action: str | None = None, page: str | None = None
    ) -> None:
        r = self.rng
        if action is None:
            u = r.random()
            action = "view" if u < 0.6 else ("click" if u < 0.88 else "search")
        duration = int(-9000.0 * _log(1.0 - r.random())) + 120
        if action == "search":
            # now and then people paste personal data into the search box; the contract drops this field
            text = r.choice(acc.country.search) if r.random() > 0.03 else acc.phone[2]
            payload = (
                f'{{"action":"search","page":"{page or "/search"}","search_text":{dumps(text)},'
                f'"duration_ms":{duration}{dev.op_tail}'
            )
        else:
            payload = f'{{"action":"{action}","page":"{page or self.page(dev)}","duration_ms":{duration}{dev.op_tail}'
        self.em.emit(t, "operation", env, dev, payload)

    def ops(self, t: int, env: str, dev: Device, acc: Account, n: int, pages: tuple[str, ...] = ()) -> int:
        """``n`` operations a few seconds apart; on given ``pages`` or random ones. Returns the last time."""
        rnd = self.rng.random
        if pages:
            for i in range(n):
                t += int(-25_000.0 * _log(1.0 - rnd())) + 800
                self.op(t, env, dev, acc, page=pages[i % len(pages)])
            return t
        # the hot path of the whole generator: inlined page choice and payload text
        emit, tail = self.em.emit, dev.op_tail
        table = _WEB_PAGES if dev.platform == "web" else _APP_PAGES
        k = len(table)
        for _ in range(n):
            t += int(-25_000.0 * _log(1.0 - rnd())) + 800
            u = rnd()
            if u >= 0.88:
                self.op(t, env, dev, acc, "search")
                continue
            base, numbered = table[int(rnd() * k)]
            page = f"{base}{int(rnd() * 9_900_000) + 100_000}" if numbered else base
            duration = int(-9000.0 * _log(1.0 - rnd())) + 120
            action = "view" if u < 0.6 else "click"
            emit(t, "operation", env, dev, f'{{"action":"{action}","page":"{page}","duration_ms":{duration}{tail}')
        return t

    def login(self, t: int, env: str, dev: Device, acc: Account, failures: int = 0) -> int:
        r = self.rng
        for _ in range(failures):
            payload: dict[str, Any] = {"action": "login_failed"}
            if r.random() < 0.5:
                payload["phone"] = acc.phone[int(r.random() * 3)]
            self.em.account_event(t, env, dev, payload)
            t += int(r.uniform(4, 40) * _SEC)
        payload = {"action": "login"}
        if r.random() < 0.3:  # SMS-code login carries the phone number, formatted as the user typed it
            payload["phone"] = acc.phone[int(r.random() * 3)]
        self.em.account_event(t, env, dev, payload)
        return t + int(r.uniform(1, 5) * _SEC)

    def perf(self, t: int, env: str, dev: Device) -> None:
        r = self.rng
        payload = {
            "kind": "perf",
            "memory_mb": r.randint(120, 900),
            "cpu_pct": round(r.uniform(1.0, 95.0), 1),
            "startup_ms": int(r.lognormvariate(6.8, 0.5)),
        }
        self.em.emit(t, "crash", env, dev, dumps(payload))

    def crash(self, t: int, env: str, dev: Device, acc: Account) -> None:
        r = self.rng
        pii = r.choice((acc.phone[0], acc.account_id or "guest", acc.real_name))
        if dev.platform == "android" and r.random() < 0.3:
            trace = ANR_TRACE.format(pkg=APP_PACKAGE, n=r.randint(40, 900))
            payload: dict[str, Any] = {"kind": "anr", "exception_type": "ANR", "stack_trace": trace}
        else:
            exc, trace = r.choice(CRASHES[dev.platform])
            payload = {
                "kind": "crash",
                "exception_type": exc,
                "stack_trace": trace.format(pkg=APP_PACKAGE, n=r.randint(40, 900), pii=pii),
            }
        payload["memory_mb"] = r.randint(150, 1200)
        self.em.emit(t, "crash", env, dev, dumps(payload))

    def app_start(self, t: int, env: str, dev: Device, acc: Account, day: int) -> int:
        """device_info on every app start, the app list about once a day (Android only)."""
        r = self.rng
        self.em.emit(t, "device_info", env, dev, dev.info)
        if dev.installed and acc.last_applist_day != day and r.random() < 0.8:
            acc.last_applist_day = day
            t += int(r.uniform(0.5, 4) * _SEC)
            running = r.sample(dev.installed, min(len(dev.installed), r.randint(2, 8)))
            self.em.emit(t, "app_list", env, dev, f'{{"installed":{dev.installed_json},"running":{dumps(running)}}}')
        if r.random() < 0.1:
            self.perf(t + 200, env, dev)
        return t + int(r.uniform(0.3, 3) * _SEC)

    def fraud_of(self, acc: Account, ms: int) -> str | None:
        if acc.scenario and acc.scenario != "account_takeover" and acc.fraud_since_ms is not None:
            return acc.scenario if ms >= acc.fraud_since_ms else None
        return None

    # -- ordinary sessions -------------------------------------------------------------------------

    def session(self, acc: Account, ms: int, day: int) -> None:
        r = self.rng
        dev = acc.web if acc.web is not None and r.random() < acc.web_share else acc.devices[0]
        logged = acc.account_id is not None and r.random() > 0.03
        env = self.em.env(acc, dev, ms, logged, net=dev.site)
        native = dev.platform != "web"
        t = self.app_start(ms, env, dev, acc, day) if native else ms
        can_act = logged and not acc.cancelled
        if can_act and (dev.shared or r.random() < (0.5 if not native else 0.08)):
            t = self.login(t, env, dev, acc, failures=1 if r.random() < 0.08 else 0)
        t = self.ops(t, env, dev, acc, 1 + int(r.expovariate(0.2)))
        if can_act and r.random() < acc.txn_p:
            t = self.ops(t, env, dev, acc, 2, ("/cart", "/checkout"))
            status = "success" if (u := r.random()) < 0.93 else ("failed" if u < 0.98 else "pending")
            payee = None
            if r.random() < 0.05:  # a transfer to one of the holder's three contacts: a payee only they pay
                payee = f"p2p_{(acc.idx * 3 + int(r.random() * 3)) * 2654435761 % 10**10:010d}"
            self.em.transaction(
                acc,
                dev,
                env,
                t + 2 * _SEC,
                self.em.amount(acc, 1.0),
                status=status,
                channel=payee and "bank_transfer",
                counterparty=payee,
                fraud=self.fraud_of(acc, t),
            )
        if native and r.random() < acc.crash_p:
            self.crash(t + int(r.uniform(1, 30) * _SEC), env, dev, acc)

    # -- scheduled actions ---------------------------------------------------------------------------

    def run(self, ms: int, kind: str, idx: int, arg: object) -> None:
        acc = self.accounts[idx]
        if acc.blocked and kind != "farm_round":  # a farm's round goes on with its other accounts
            return
        getattr(self, f"do_{kind}")(ms, acc, arg)

    def block(self, acc: Account) -> None:
        """The platform closes an account once a fraud report on the account came in (rightly or not): it
        does nothing more. A victim's disputed payments are reported one by one: the account stays open."""
        acc.blocked = True
        acc.active = False
        self.activate(acc)

    def do_register(self, ms: int, acc: Account, arg: object) -> None:
        r = self.rng
        dev = acc.devices[0]
        day = ms // 86_400_000
        if r.random() < 0.7:  # browsing before signing up is unlogged use: account_id null
            anon = self.em.env(acc, dev, ms - 10 * _MIN, logged_in=False)
            start = ms - int(r.uniform(3, 30) * _MIN)
            t = self.app_start(start, anon, dev, acc, day) if dev.platform != "web" else start
            self.ops(t, anon, dev, acc, r.randint(1, 4), PROMO_PAGES if acc.scenario == "promo_abuse" else ())
        env = self.em.env(acc, dev, ms)
        payload: dict[str, Any] = {"action": "register", "phone": acc.phone[int(r.random() * 3)]}
        if r.random() < 0.8 or acc.country.code == "CN":  # real-name verification at sign-up
            payload["real_name"], payload["id_number"] = acc.real_name, acc.id_number
        self.em.account_event(ms, env, dev, payload)
        t = ms + 2 * _SEC
        for purpose, p in (("risk_control", 0.995), ("marketing", 0.55), ("personalisation", 0.7)):
            self.em.account_event(t, env, dev, {"action": "consent", "purpose": purpose, "granted": r.random() < p})
            t += 300
        self.age(t + _SEC, env, dev, acc, "minor_with_guardian" in acc.tags)
        acc.active = True
        self.activate(acc)
        if acc.scenario is not None and not acc.labelled:
            self.em.label_account(acc, ms, acc.scenario)
        if acc.scenario == "promo_abuse":  # claim the new-user coupon and spend just over the threshold
            t = self.ops(t + 3 * _SEC, env, dev, acc, 3, PROMO_PAGES)
            self.op(t + 2 * _SEC, env, dev, acc, "click", "/promo/newuser/claim")
            amount = round(acc.country.amount_median * r.uniform(0.15, 0.2), acc.country.decimals)
            self.em.transaction(acc, dev, env, t + 40 * _SEC, float(amount), channel="wallet", fraud="promo_abuse")
        else:
            t = self.ops(t + 2 * _SEC, env, dev, acc, r.randint(1, 5))
            if acc.scenario in ("emulator", "rooted_hooked") and r.random() < 0.7:  # cash out at once
                self.em.transaction(acc, dev, env, t + 30 * _SEC, self.em.amount(acc, 1.5), fraud=acc.scenario)

    def age(self, t: int, env: str, dev: Device, acc: Account, guardian: bool) -> None:
        payload: dict[str, Any] = {"action": "age_declared", "birth_year": acc.birth_year}
        if acc.birth_year > 2008:  # minors: a guardian's consent is recorded (or its absence)
            payload["guardian_consent"] = guardian
        self.em.account_event(t, env, dev, payload)

    def do_age(self, ms: int, acc: Account, arg: object) -> None:
        dev = acc.devices[0]
        self.age(ms, self.em.env(acc, dev, ms), dev, acc, bool(arg))

    def do_consent(self, ms: int, acc: Account, arg: object) -> None:
        purpose, granted = arg  # type: ignore[misc]
        dev = acc.devices[0]
        env = self.em.env(acc, dev, ms)
        t = self.ops(ms - 20 * _SEC, env, dev, acc, 1, ("/me/settings/privacy",))
        self.em.account_event(t + _SEC, env, dev, {"action": "consent", "purpose": purpose, "granted": granted})

    def do_cancel(self, ms: int, acc: Account, arg: object) -> None:
        dev = acc.devices[0]
        env = self.em.env(acc, dev, ms)
        t = self.ops(ms - 30 * _SEC, env, dev, acc, 2, ("/me/settings", "/me/settings/cancel"))
        self.em.account_event(t + _SEC, env, dev, {"action": "cancel"})
        acc.cancelled = True
        acc.spd *= 0.1  # the app lingers on the phone: a few events still arrive after the cancellation
        self.activate(acc)
        self.schedule(t + int(self.rng.uniform(0.5, 20) * _HOUR), "linger", acc.idx, None)

    def do_linger(self, ms: int, acc: Account, arg: object) -> None:
        """One more app start after the account is gone (the app is still installed)."""
        self.session(acc, ms, ms // 86_400_000)

    def do_pwchange(self, ms: int, acc: Account, arg: object) -> None:
        dev = acc.devices[0]
        env = self.em.env(acc, dev, ms)
        t = self.ops(ms, env, dev, acc, 1, ("/me/security",))
        self.em.account_event(t + 5 * _SEC, env, dev, {"action": "password_change"})

    def do_new_phone(self, ms: int, acc: Account, arg: object) -> None:
        r = self.rng
        dev = arg
        assert isinstance(dev, Device)
        acc.devices.insert(0, dev)
        acc.tags |= dev.tags
        env = self.em.env(acc, dev, ms)
        t = self.app_start(ms, env, dev, acc, ms // 86_400_000) if dev.platform != "web" else ms
        t = self.login(t, env, dev, acc, failures=r.randint(0, 2))
        if r.random() < 0.35:  # forgot the password on the new phone: reset it, like a takeover would
            self.em.account_event(t + 30 * _SEC, env, dev, {"action": "password_change"})
        self.ops(t + 40 * _SEC, env, dev, acc, r.randint(2, 6))

    def do_ato(self, ms: int, acc: Account, arg: object) -> None:
        """The attacker signs in, takes the password and drains the account. The owner usually gets it back
        hours later (the fraud team then has only the attacker's payments to report: the victim disputes
        them); otherwise the owner gives it up and the attacker keeps using it (the account is reported
        from the takeover on)."""
        r = self.rng
        dev, net, recovers = arg  # type: ignore[misc]
        assert isinstance(dev, Device) and isinstance(net, NetPlan)
        anon = self.em.env(acc, dev, ms, logged_in=False, net=net)
        env = self.em.env(acc, dev, ms, net=net)
        t = self.app_start(ms - 20 * _SEC, anon, dev, acc, ms // 86_400_000)
        t = self.login(max(t, ms), env, dev, acc, failures=r.randint(0, 3))
        t = self.ops(t, env, dev, acc, 2, SECURITY_PAGES[:2])
        self.em.account_event(t + 10 * _SEC, env, dev, {"action": "password_change"})
        back = t + int(r.uniform(3, 30) * _HOUR)
        if recovers:
            acc.fraud_until_ms, acc.labelled = back, True
        else:
            acc.active = False  # the owner stops using it
            self.activate(acc)
            self.em.label_account(acc, t, "account_takeover")
        self.drain(t + 20 * _SEC, env, dev, acc)
        if recovers:
            self.schedule(back, "recover", acc.idx, None)
        else:
            self.schedule(t + int(r.uniform(8, 40) * _HOUR), "ato_use", acc.idx, (dev, net))

    def drain(self, t: int, env: str, dev: Device, acc: Account) -> None:
        r = self.rng
        t = self.ops(t, env, dev, acc, 2, SECURITY_PAGES[2:])
        mule = ids.bank_account(r, acc.country)
        for _ in range(r.randint(1, 3)):
            t += int(r.uniform(20, 600) * _SEC)
            self.em.transaction(
                acc,
                dev,
                env,
                t,
                self.em.amount(acc, r.uniform(8, 40)),
                status="success" if r.random() < 0.85 else "pending",
                channel=r.choice(("bank_transfer", "bank_transfer", "wallet")),
                counterparty=f"p2p_{r.randrange(10**9, 10**10)}",
                bank_account=mule,
                fraud="account_takeover",
            )

    def do_ato_use(self, ms: int, acc: Account, arg: object) -> None:
        """The attacker comes back to an account the owner gave up, until the platform closes it."""
        dev, net = arg  # type: ignore[misc]
        env = self.em.env(acc, dev, ms, net=net)
        t = self.app_start(ms, env, dev, acc, ms // 86_400_000)
        self.drain(self.login(t, env, dev, acc), env, dev, acc)
        self.schedule(ms + int(self.rng.uniform(8, 40) * _HOUR), "ato_use", acc.idx, arg)

    def do_pay(self, ms: int, acc: Account, pay: Pay) -> None:
        """A scheduled payment (``payments.Pay``): a fraud done to or by the account, or an honest one."""
        if pay.fraud is None and (not acc.active or acc.cancelled):
            return  # an honest user pays only while the account exists
        em = self.em
        dev = pay.device or acc.devices[0]
        env = em.env(acc, dev, ms, net=pay.net)
        t = self.ops(ms, env, dev, acc, len(pay.pages), pay.pages) + 2 * _SEC if pay.pages else ms
        amount = pay_amount(pay, acc) if pay.absolute else em.amount(acc, pay.scale)
        payee = em.merchants[pay.merchant] if pay.merchant is not None else pay.counterparty
        em.transaction(
            acc,
            dev,
            env,
            t,
            amount,
            channel=pay.channel,
            counterparty=payee,
            bank_account=pay.bank_account,
            fraud=pay.fraud,
        )

    def do_recover(self, ms: int, acc: Account, arg: object) -> None:
        """The victim finds the old password no longer works and resets it."""
        r = self.rng
        dev = acc.devices[0]
        env = self.em.env(acc, dev, ms)
        t = self.app_start(ms, env, dev, acc, ms // 86_400_000) if dev.platform != "web" else ms
        for _ in range(r.randint(1, 3)):
            self.em.account_event(t, env, dev, {"action": "login_failed"})
            t += int(r.uniform(5, 60) * _SEC)
        self.em.account_event(t + 90 * _SEC, env, dev, {"action": "password_change"})
        self.login(t + 120 * _SEC, env, dev, acc)

    def do_burst(self, ms: int, acc: Account, arg: object) -> None:
        r = self.rng
        if arg != "card_testing" and (not acc.active or acc.cancelled):
            return  # an honest user pays only while the account exists
        dev = acc.devices[0]
        env = self.em.env(acc, dev, ms)
        t = self.ops(ms, env, dev, acc, 1, ("/checkout",))
        if arg == "card_testing":  # many tiny charges with stolen cards; most are declined
            merchant = self.em.merchants[acc.idx % len(self.em.merchants)]
            unit = acc.country.amount_median / 40
            for _ in range(r.randint(15, 80)):
                t += int(r.uniform(2, 20) * _SEC)
                u = r.random()
                status = "failed" if u < 0.8 else ("success" if u < 0.95 else "pending")
                amount = float(max(0.5, round(unit * r.uniform(0.5, 3.0), acc.country.decimals)))
                self.em.transaction(
                    acc,
                    dev,
                    env,
                    t,
                    amount,
                    status=status,
                    channel="card",
                    counterparty=merchant,
                    institution=r.choice(CARD_ISSUERS),
                    fraud="card_testing",
                )
        elif arg == "bulk":  # legitimate: many small label payments to one service; a card may hit its limit
            service = self.em.merchants[acc.idx % len(self.em.merchants)]
            limit_at = r.randint(5, 40) if r.random() < 0.4 else None  # after this many, the card is declined
            for i in range(r.randint(15, 80)):
                t += int(r.uniform(3, 30) * _SEC)
                declined = (limit_at is not None and i >= limit_at) or r.random() < 0.03
                self.em.transaction(
                    acc,
                    dev,
                    env,
                    t,
                    self.em.amount(acc, r.uniform(0.05, 0.3)),
                    status="failed" if declined else "success",
                    channel="card",
                    counterparty=service,
                )
        else:  # legitimate: a run of small in-game or sticker purchases
            for _ in range(r.randint(4, 12)):
                t += int(r.uniform(20, 120) * _SEC)
                status = "success" if r.random() < 0.9 else "failed"
                self.em.transaction(acc, dev, env, t, self.em.amount(acc, r.uniform(0.02, 0.12)), status=status)

    def do_farm_round(self, ms: int, acc: Account, arg: object) -> None:
        """The farm operator cycles through all accounts on the one handset."""
        r = self.rng
        t = ms
        for idx in self.farms[arg]:  # type: ignore[index]
            member = self.accounts[idx]
            dev = member.devices[0]
            if member.blocked:
                continue
            if not member.active:
                member.created_ms = member.fraud_since_ms = t
                self.do_register(t, member, None)
                t += int(r.uniform(60, 180) * _SEC)
                continue
            env = self.em.env(member, dev, t)
            t2 = self.app_start(t, env, dev, member, t // 86_400_000)
            t2 = self.login(t2, env, dev, member)
            t2 = self.ops(t2, env, dev, member, r.randint(2, 5), ("/coupon/center", "/live/1024", "/coupon/center"))
            self.op(t2 + 3 * _SEC, env, dev, member, "click", "/coupon/center/checkin")
            if r.random() < 0.3:
                amount = self.em.amount(member, 0.1)
                self.em.transaction(member, dev, env, t2 + 30 * _SEC, amount, fraud="device_farm")
            t += int(r.uniform(60, 240) * _SEC)
