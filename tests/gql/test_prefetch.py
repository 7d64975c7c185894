"""Loaders answer synchronously for what a list loaded before its fields ran."""

from __future__ import annotations

import inspect

import pytest

from gql.schema.loaders import Loader


async def test_a_loaded_key_is_answered_now_and_an_unloaded_one_later() -> None:
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[str]:
        batches.append(keys)
        return [f"row {key}" for key in keys]

    loader: Loader[int, str] = Loader(batch)
    later = loader.now_or_later(1)
    assert inspect.isawaitable(later)
    assert await later == "row 1"
    assert loader.now_or_later(1) == "row 1"  # a plain value: no await, no task
    await loader.load_many([2, 3])
    assert [loader.now_or_later(key) for key in (2, 3)] == ["row 2", "row 3"]
    assert batches == [[1], [2, 3]]


async def test_a_failed_load_is_never_answered_as_a_value() -> None:
    async def batch(keys: list[int]) -> list[str]:
        raise RuntimeError("down")

    loader: Loader[int, str] = Loader(batch)
    first = loader.now_or_later(1)
    assert inspect.isawaitable(first)
    with pytest.raises(RuntimeError, match="down"):
        await first
    again = loader.now_or_later(1)
    assert inspect.isawaitable(again)  # the failure is awaited (and raised), not returned
    with pytest.raises(RuntimeError, match="down"):
        await again
