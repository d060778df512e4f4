"""The check of a large file on two cores (``import_split``): the second half of the file is
judged by a forked process, and the verdicts, messages and resume point are a single pass's."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from pointbridge.loyalty import import_split
from pointbridge.loyalty.customer_import import CheckedRows, check_file
from pointbridge.loyalty.import_rows import RowError
from pointbridge.services import Services
from pointbridge.storage.models import Customer
from pointbridge.web.cli import cli

ROWS = 40


def _file(tmp_path: Path) -> Path:
    """Good rows, and bad ones on both sides of the middle: a customer named again after
    the middle, a quote left open, bytes that are not UTF-8, a row one field short."""
    lines = [b"email,first_name,points"]
    lines += [f"c{n}@example.com,Name{n},{n}".encode() for n in range(ROWS)]
    lines[5] = b"c5@example.com,Name5,minus"
    lines[30] = b"c3@example.com,Again,1"  # line 31 names c3, as line 5 does
    lines[33] = b'c32@example.com,"open,1'
    lines[36] = b"c35@example.com,N\xe9mec,1"
    lines[38] = b"c37@example.com,Short"
    source = tmp_path / "customers.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    return source


def _check(source: Path) -> tuple[str, list[RowError], list[tuple[int, object]]]:
    errors: list[RowError] = []
    with source.open("rb") as stream, CheckedRows() as kept:
        checked = check_file(stream, errors.append, keep=kept)
        rows = [(row.line, row.values) for row in kept]
    assert checked.rows == ROWS
    return checked.fingerprint, errors, rows


def test_a_file_judged_in_two_processes_gets_a_single_pass_verdicts(tmp_path, monkeypatch) -> None:
    source = _file(tmp_path)
    one = _check(source)
    forks: list[int] = []
    fork = import_split.os.fork

    def counted_fork() -> int:
        pid = fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(import_split, "SPLIT_BYTES", 0)
    monkeypatch.setattr(import_split.os, "fork", counted_fork)
    two = _check(source)
    assert len(forks) == 1  # the second half was another process's
    assert two == one
    fingerprint, errors, _ = two
    # The file's own digest: --resume finds the point a single pass saved, and the other way.
    assert fingerprint == hashlib.sha256(source.read_bytes()).hexdigest()
    assert [(e.line, e.column) for e in errors] == [
        (6, "points"),
        (31, "email"),
        (34, "first_name"),
        (37, "first_name"),
        (39, "points"),
    ]
    assert "on an earlier line" in errors[1].message


def test_a_failed_second_process_leaves_its_rows_to_this_one(tmp_path, monkeypatch) -> None:
    source = _file(tmp_path)
    one = _check(source)
    monkeypatch.setattr(import_split, "SPLIT_BYTES", 0)
    # It hands back a batch of 5 rows, then fails: this process judges the rest.
    monkeypatch.setattr(import_split, "_HANDED_TOGETHER", 5)
    monkeypatch.setattr(import_split.pickle, "dump", _fails_in_fork_after_one(os.getpid()))
    assert _check(source) == one


def _fails_in_fork_after_one(parent: int) -> Callable[..., None]:
    dump = pickle.dump
    calls = []

    def dump_or_fail(*args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            calls.append(1)
            if len(calls) > 1:
                raise OSError("disk full")
        dump(*args, **kwargs)

    return dump_or_fail


def test_a_file_judged_in_two_processes_imports_its_valid_rows(
    app: Flask, services: Services, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(import_split, "SPLIT_BYTES", 0)
    source = _file(tmp_path)
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["customers", "import", str(source), "--skip-invalid"])
    assert result.exit_code == 1, result.output
    assert "checked 40 rows: 5 bad" in result.output
    assert "created 35," in result.output and "skipped 5" in result.output
    with services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 35
        again = session.scalar(
            select(Customer.first_name).where(Customer.email == "c3@example.com")
        )
    assert again == "Name3"  # the first line naming c3 wins; the second is the bad one
