"""The plugin kit: host-owned helpers a platform plugin may use, so plugins keep only mapping
and routes. HTTP with error mapping and pacing (``http``, ``ratelimit``), one request per item
(``items``, ``outage``), install helpers (``fields``, ``field_names``, ``choices``,
``setting_fields``), answers of bulk calls and background jobs (``bulk``, ``halving``, ``jobs``,
``paging``), webhooks (``webhook_body``, ``webhook_secret``), per-integration memory (``state``).
"""
