"""Numbers the command line takes as row ids (or as a count of rows): one no row can have is
refused in one line naming it, before it reaches the database, whose BIGINT a larger number
overflowed (a traceback, on PostgreSQL and SQLite alike)."""

from __future__ import annotations

import pytest
from flask import Flask

from pointbridge.services import Services
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.cli import cli

TOO_LARGE = str(MAX_ID + 1)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("outbox", "retry", "--id", TOO_LARGE), f"'--id': {TOO_LARGE} is not in the range 1<="),
        (("outbox", "retry", "--id", "-1"), "'--id': -1 is not in the range 1<="),
        (("outbox", "retry", "--id", "0"), "'--id': 0 is not in the range 1<="),
        (("outbox", "dead", "--limit", TOO_LARGE), f"'--limit': {TOO_LARGE} is not in the range"),
        (("outbox", "dead", "--limit", "-1"), "'--limit': -1 is not in the range 1<="),
        (("tokens", "revoke", TOO_LARGE), f"'ID': {TOO_LARGE} is not in the range 1<="),
        (("integrations", "show", TOO_LARGE), f"No integration named '{TOO_LARGE}'."),
        (("integrations", "disable", TOO_LARGE), f"No integration named '{TOO_LARGE}'."),
        (("integrations", "install", TOO_LARGE), f"No integration named '{TOO_LARGE}'."),
        (("export", TOO_LARGE, "--status"), f"No integration named '{TOO_LARGE}'."),
        (("export", TOO_LARGE), f"No integration named '{TOO_LARGE}'."),
    ],
)
def test_an_id_no_row_can_have_is_one_line_naming_it(
    app: Flask, services: Services, args: tuple[str, ...], named: str
) -> None:
    result = app.test_cli_runner().invoke(cli, list(args))
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "Error:" in result.output.splitlines()[-1]
    assert named in result.output
