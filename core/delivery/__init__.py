"""Delivery: the outbox rows written with each change (``outbox``), the one worker that sends
them and export pages (``worker``, ``claims``, ``leases``, ``wakeup``, ``background``), exports
(``exports``, ``export_pages``), the snapshots sent (``snapshots``), what admins see
(``admin``, ``metrics``).
"""
