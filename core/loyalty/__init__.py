"""The loyalty domain: customers, the points ledger and its lots, expiry, the customer rules
and the CSV import, and what platform webhooks do to points. Every balance change goes through
``service.Loyalty``.
"""
