"""Payment scenarios: fraud done through payments, not devices, and the honest payers who look like it.

- **compromised merchant:** a small shop's payment account is hijacked for 2-5 days; every payment to it
  then is a fraudulent charge on a victim's stored card (its honest customers stop paying it meanwhile);
- **compromised customer:** a victim's card leaks; over two weeks the fraudster makes larger payments on
  the victim's account, from a browser of their own or recorded on the victim's phone, while the victim's
  honest activity goes on;
- **large amount:** one to three payments above a fixed threshold (15-40 times the country's median
  payment), within two hours, to a fraudster's shop a few victims pay;
- **push-payment scam:** victims are talked into transferring money to a mule's account: several victims
  pay one new payee within days; the mule (a fake account) then moves the money on.

Look-alikes: **popular merchants** (a few shops take a quarter of all card payments, from many accounts),
**rent payers** (groups of accounts paying one shared payee large sums by bank transfer, weekly to
monthly), **big purchases** (an honest one-off payment as large as the large-amount fraud), and honest
transfers to a person's own contacts (new payees, one account each).

Victims of the first three are honest accounts (``victim_of``): the victim disputes the fraudulent
payments (transaction labels); the account is never reported, and its other payments stay legitimate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devicerisk.synth import ids
from devicerisk.synth.clock import DAY_MS, HOUR_MS
from devicerisk.synth.population import Account, Device, NetPlan

if TYPE_CHECKING:
    from devicerisk.synth.scenarios import Builder

#: Merchants in the world, and how many of them are popular (a quarter of the random card payments).
N_MERCHANTS, POPULAR, POPULAR_SHARE = 400, 8, 0.25
#: The large-amount threshold, as a multiple of the country's median payment.
LARGE = 15.0


@dataclass(frozen=True, slots=True)
class Pay:
    """A scheduled payment. ``scale`` multiplies the account's usual amount, or (``absolute``) the country's
    median payment; ``merchant`` (an index) or ``counterparty`` names the payee; ``device`` and ``net``, when
    set, are not the account holder's own (a fraudster's browser)."""

    fraud: str | None
    scale: float
    absolute: bool = False
    merchant: int | None = None
    counterparty: str | None = None
    bank_account: str | None = None
    channel: str = "card"
    device: Device | None = None
    net: NetPlan | None = None
    pages: tuple[str, ...] = ("/cart", "/checkout")


def victim(b: Builder, scenario: str) -> Account:
    acc = b._legit_one(None, set())
    acc.victim_of = scenario
    return acc


def compromised_merchant(b: Builder, n: int) -> None:
    r = b.rng
    sizes = split(n, 3, 5, r)  # many small incidents, a few a week at 15,000 accounts
    for size, start in zip(sizes, b.spread(len(sizes), 0.0, 0.95), strict=True):
        merchant = POPULAR + r.randrange(N_MERCHANTS - POPULAR)  # a small shop
        end = min(b.end_ms, start + r.randint(2, 5) * DAY_MS)
        b.hijacked.append((merchant, start, end))
        for _ in range(size):
            acc = victim(b, "compromised_merchant")
            for _ in range(r.randint(1, 3)):
                pay = Pay("compromised_merchant", r.uniform(1, 3), merchant=merchant, pages=())
                b.at(r.randrange(start, end), "pay", acc.idx, pay)


def compromised_customer(b: Builder, n: int) -> None:
    r, f = b.rng, b.f
    for _ in range(n):
        acc = victim(b, "compromised_customer")
        dev = net = None
        if r.random() < 0.5:  # the fraudster pays from a browser of their own, far away
            where = b.country()
            dev, net = f.browser(where), NetPlan(home_ip=b.dc_pool.address(r), cell=b.dc_pool, wifi_p=0.5)
        start = b.when(0.05, 0.9)
        end = min(b.end_ms, start + 14 * DAY_MS)
        for _ in range(r.randint(3, 8)):
            pay = Pay("compromised_customer", r.uniform(3, 6), merchant=_merchant(r), device=dev, net=net)
            b.at(r.randrange(start, end), "pay", acc.idx, pay)


def large_amount(b: Builder, n: int) -> None:
    r, f = b.rng, b.f
    shops = [f"shop_{r.randrange(10**9, 10**10)}" for _ in range(max(1, n // 3))]
    for _ in range(n):
        acc = victim(b, "large_amount")
        dev = net = None
        if r.random() < 0.5:
            dev, net = f.browser(acc.country), NetPlan(home_ip=b.dc_pool.address(r), cell=b.dc_pool)
        t = b.when(0.05, 0.97)
        shop = r.choice(shops)
        for _ in range(r.randint(1, 3)):
            pay = Pay("large_amount", r.uniform(LARGE, 40), True, counterparty=shop, device=dev, net=net)
            b.at(t, "pay", acc.idx, pay)
            t += r.randint(5, 120) * 60_000


def push_payment_scam(b: Builder, n: int) -> None:
    r, f = b.rng, b.f
    incidents = split(n, 3, 5, r)  # a mule and its victims; a few a week at 15,000 accounts
    for size, registered in zip(incidents, b.spread(len(incidents), 0.0, 0.9), strict=True):
        country = b.country()
        mule = b.account(country, [f.device(country, f.platform_for(country))], f.home_net(country))
        mule.scenario, mule.spd, mule.txn_p = "push_payment_scam", 0.5, 0.1
        b.register(mule, registered)
        mule.fraud_since_ms = mule.created_ms
        payee = f"p2p_{r.randrange(10**9, 10**10)}"
        start = (mule.created_ms or b.start_ms) + r.randint(12, 72) * HOUR_MS
        end = min(b.end_ms, start + r.randint(1, 3) * DAY_MS)
        for _ in range(size - 1):
            acc = victim(b, "push_payment_scam")
            pay = Pay(
                "push_payment_scam",
                r.uniform(5, 20),
                True,
                counterparty=payee,
                bank_account=mule.bank_account,
                channel="bank_transfer",
                pages=("/wallet", "/transfer"),
            )
            b.at(r.randrange(start, max(start + 1, end)), "pay", acc.idx, pay)
        t = end + r.randint(1, 12) * HOUR_MS  # the mule moves the money on
        onward = ids.bank_account(r, country)
        for _ in range(r.randint(1, 3)):
            pay = Pay(
                "push_payment_scam",
                r.uniform(10, 40),
                True,
                counterparty=f"p2p_{r.randrange(10**9, 10**10)}",
                bank_account=onward,
                channel="bank_transfer",
                pages=("/wallet", "/wallet/withdraw"),
            )
            b.at(min(t, b.end_ms - 1), "pay", mule.idx, pay)
            t += r.randint(10, 90) * 60_000


# -- look-alikes ----------------------------------------------------------------------------------------


def rent(b: Builder, lives: list[set[str]]) -> None:
    """Tenants of one landlord (or members of one scheme) paying it by bank transfer, weekly to monthly."""
    r = b.rng
    country = b.country()
    payee, bank = f"rent_{r.randrange(10**9, 10**10)}", ids.bank_account(r, country)
    group = f"rent-{len(b.accounts)}"
    for life in lives:
        acc = b._legit_one("rent_payer", life, country)
        acc.group = group
        period = r.choice((7, 14, 30, 30)) * DAY_MS
        pay = Pay(
            None,
            r.uniform(4, 10),
            counterparty=payee,
            bank_account=bank,
            channel="bank_transfer",
            pages=("/wallet", "/transfer"),
        )
        t = b.start_ms + r.randrange(period)
        while t < b.end_ms:
            b.at(min(b.end_ms - 1, t + r.randint(0, 36) * HOUR_MS), "pay", acc.idx, pay)
            t += period


def big_purchase(b: Builder, acc: Account) -> None:
    """An honest one-off payment above the large-amount threshold (a sofa, a laptop)."""
    r = b.rng
    for _ in range(1 if r.random() < 0.8 else 2):
        pay = Pay(None, r.uniform(LARGE, 40), True, merchant=_merchant(r))
        b.at(b.when(0.02, 0.98), "pay", acc.idx, pay)


def pay_amount(pay: Pay, acc: Account) -> float:
    """An ``absolute`` payment's amount: ``scale`` times the country's median payment, in its usual rounding."""
    c = acc.country
    value = c.amount_median * pay.scale
    return float(max(100, round(value, -2))) if c.decimals == 0 else round(value, c.decimals)


def _merchant(r: random.Random) -> int:
    """A merchant index: popular ones take ``POPULAR_SHARE`` of the payments."""
    return int(r.random() * POPULAR) if r.random() < POPULAR_SHARE else int(r.random() * N_MERCHANTS)


def split(n: int, lo: int, hi: int, rng: random.Random) -> list[int]:
    """Split ``n`` into group sizes in ``[lo, hi]`` (one group may exceed ``hi`` only if n < 2*lo)."""
    sizes = []
    while n > 0:
        if n <= hi:
            sizes.append(n)
            break
        size = rng.randint(lo, min(hi, n - lo))
        sizes.append(size)
        n -= size
    return sizes
