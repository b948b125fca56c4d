"""The analysts' derived views, as SQL over the snapshot's tables (``events``, ``labels``, the scores, the
warehouse copies): devices, device-account links and daily aggregates.

A device is named by the contract's device key (``DEVICE_KEY_COLUMNS``, see "Keys and joins" in
docs/data-contract.md), the same key the features and the signal log use.
"""

from __future__ import annotations

from devicerisk.contract.fields import DEVICE_KEY_SQL as DEVICE_KEY
from devicerisk.risk.devices import flags_sql

#: Each device and each account seen on it: how often, when, and the device's environment signals.
DEVICE_ACCOUNTS = f"""
SELECT {DEVICE_KEY} AS device_key, account_id_pid,
       count(*) AS events,
       count(*) FILTER (WHERE event_type = 'transaction') AS transactions,
       min(event_time) AS first_seen, max(event_time) AS last_seen
FROM events
WHERE {DEVICE_KEY} IS NOT NULL AND account_id_pid IS NOT NULL
GROUP BY ALL
"""

#: Device-level risk: accounts on the device, its environment signals, and its transactions' scores.
DEVICE_SCORES = f"""
WITH dev AS (
    SELECT {DEVICE_KEY} AS device_key, * FROM events WHERE {DEVICE_KEY} IS NOT NULL
),
env AS (
    SELECT device_key,
           count(DISTINCT account_id_pid) AS accounts,
           count(*) AS events,
           mode(device_model) AS device_model,
           mode(device_imsi_country) AS sim_country,
           {flags_sql()},
           min(event_time) AS first_seen, max(event_time) AS last_seen
    FROM dev GROUP BY device_key
),
risk AS (
    SELECT d.device_key, count(*) AS transactions_scored, max(s.score) AS max_score, avg(s.score) AS mean_score,
           count(*) FILTER (WHERE s.level = 'highest') AS highest, count(*) FILTER (WHERE s.level = 'elevated')
               AS elevated
    FROM dev d JOIN transaction_scores s ON s.event_id = d.event_id
    GROUP BY d.device_key
)
SELECT env.*, coalesce(risk.transactions_scored, 0) AS transactions_scored, risk.max_score, risk.mean_score,
       coalesce(risk.highest, 0) AS highest, coalesce(risk.elevated, 0) AS elevated
FROM env LEFT JOIN risk USING (device_key)
"""

#: Events per day and type, beside what anonymised accounts left behind (``anonymous_aggregates``, 6.3).
AGGREGATES = """
WITH lake AS (SELECT event_date, event_type, count(*) AS events FROM events GROUP BY ALL)
SELECT event_date, event_type, coalesce(lake.events, 0) AS events,
       coalesce(a.events, 0) AS anonymised_events
FROM lake FULL OUTER JOIN anonymous_aggregates a USING (event_date, event_type)
"""
