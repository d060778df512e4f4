"""Storage: engine and sessions (``db``), tables (``models``), SQL helpers (``sql``), migrations
(``migrate``), secrets encrypted at rest (``secrets``), private files (``files``).
"""
