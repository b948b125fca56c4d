"""The analysts' read-only interface: a snapshot of the stores, pseudonymised and minimised, and no key.

>>> from devicerisk.analytics import open_lake
>>> with open_lake("data", purpose="risk_control") as lake:
...     lake.device_scores().order("max_score DESC").limit(10).df()

See :mod:`devicerisk.analytics.interface`; ``devicerisk share`` (:mod:`devicerisk.analytics.share`) exports
k-anonymous aggregates for partners.
"""

from devicerisk.analytics.interface import AccountView, AnalystLake, RawIdentifierError, open_lake

__all__ = ["AccountView", "AnalystLake", "RawIdentifierError", "open_lake"]
