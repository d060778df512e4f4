"""The kit's pager: pointbridge.kit.paging.all_pages."""

from __future__ import annotations

from pointbridge.kit.paging import all_pages


def _pages(items: list[int], size: int, *, total: bool) -> tuple[list[int], list[int]]:
    offsets: list[int] = []

    def fetch(offset: int) -> tuple[list[int], int | None]:
        offsets.append(offset)
        return items[offset : offset + size], len(items) if total else None

    return all_pages(fetch, size), offsets


def test_all_pages_stops_at_the_total_without_asking_for_an_empty_page() -> None:
    assert _pages(list(range(6)), 3, total=True) == (list(range(6)), [0, 3])


def test_all_pages_without_a_total_stops_on_a_short_page() -> None:
    assert _pages(list(range(7)), 3, total=False) == (list(range(7)), [0, 3, 6])
    assert _pages([], 3, total=False) == ([], [0])


def test_a_platform_ignoring_the_offset_does_not_loop_forever() -> None:
    calls: list[int] = []

    def same_page(offset: int) -> tuple[list[int], int | None]:
        calls.append(offset)
        return [1, 2], None

    assert len(all_pages(same_page, 2, max_pages=5)) == 10
    assert len(calls) == 5
