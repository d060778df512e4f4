"""The install step every platform shares: make sure the loyalty fields exist.

Each plugin lists the fields it writes (``FieldSpec``: the platform's name and type) and what
the account has (``ExistingField``); ``ensure_fields`` reuses those that match by name, creates
the rest through the plugin's own call, and says where a field the admin made has another type.
Running it again creates nothing, which is what makes ``install`` safe to repeat. A field
another install created between the listing and the create (the platform answers "already
exists") counts as existing: ``create`` raises ``FieldExists``. A contact write fills only
the fields install recorded (``installed_only``), so a field added to pointbridge since waits
for the next install instead of failing every contact.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field pointbridge writes: its name on the platform (prefix applied) and type there."""

    name: str
    type: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class ExistingField:
    """A field the account already has."""

    name: str
    type: str
    id: Any = None


class FieldExists(Exception):
    """Raised by an ``ensure_fields`` ``create``: the platform already has the field (made
    meanwhile by someone else), with this ``id`` if the answer told it."""

    def __init__(self, id: Any = None) -> None:
        super().__init__(id)
        self.id = id


@dataclass
class EnsuredFields:
    """What ``ensure_fields`` found and did: field ids by name, and names for the admin."""

    ids: dict[str, Any] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ensure_fields(
    wanted: Sequence[FieldSpec],
    existing: Iterable[ExistingField],
    create: Callable[[FieldSpec], Any],
    *,
    same_name: Callable[[str], str] = str.casefold,
    same_type: Callable[[str], str] = str.casefold,
) -> EnsuredFields:
    """Reuse each wanted field the account has (names compared through ``same_name``, the
    platform's own rule), create the others with ``create`` (which returns the new field's id),
    and warn where an existing field's type differs. Of two existing fields with one name, the
    one listed last is reused: list them in a stable order, so every run picks the same one."""
    found = {same_name(item.name): item for item in existing}
    result = EnsuredFields()
    for spec in wanted:
        match = found.get(same_name(spec.name))
        if match is None:
            try:
                result.ids[spec.name] = create(spec)
            except FieldExists as exists:
                result.ids[spec.name] = exists.id
                result.existing.append(spec.name)
            else:
                result.created.append(spec.name)
            continue
        result.ids[spec.name] = match.id
        result.existing.append(spec.name)
        if same_type(match.type) != same_type(spec.type):
            result.warnings.append(
                f"The field {match.name} exists as {match.type}, but pointbridge writes "
                f"{spec.type}: segments and automations that compare it may not work. Change "
                f"its type on the platform, or delete it and run install again."
            )
    return result


def installed_only(fields: Mapping[K, V], installed: Container[K] | None) -> dict[K, V]:
    """The ``fields`` a contact write fills: those whose key is in ``installed``, what install
    recorded in the integration's data; all of them when it recorded nothing (never installed,
    or its data lost) or nothing of these (a record made under another field prefix, whose
    install has not run yet): the platform's own answer then tells what is missing, where
    writing none of them would send contacts without their loyalty data as if delivered.

    An integration installed before pointbridge wrote a field has no such field on the
    platform, and naming one the account lacks makes the platform refuse every contact, which
    pauses delivery. So it keeps writing the fields it has until install runs again and
    creates the new one."""
    kept = {key: value for key, value in fields.items() if installed and key in installed}
    return kept or dict(fields)
