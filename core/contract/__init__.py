"""The plugin contract: the hooks a plugin implements and the types the host hands it.

Everything a plugin author reads: ``hookspecs`` (the hooks and their manual), ``platform``
(what a plugin declares, what it is handed per call), ``contact`` and ``events`` (what is sent),
``errors`` (what a plugin raises so the host decides what happens next). ``pointbridge``
re-exports the names a plugin needs.
"""
