"""Identifiers: UUIDv7 for records, random names for requests, cheap unique names for
temporary files."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from dangan.ids import RandomNames, UniqueNames, new_id, new_ids

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_ids_are_uuid7_with_the_time_first() -> None:
    ids = new_ids(NOW, 50) + [new_id(NOW)]
    assert len(set(ids)) == len(ids)
    for value in map(uuid.UUID, ids):
        assert value.version == 7 and value.variant == uuid.RFC_4122
        assert value.int >> 80 == int(NOW.timestamp() * 1000)


def test_unique_names_look_like_a_uuid_hex_and_differ_per_process() -> None:
    names = UniqueNames()
    mine = [names.next() for _ in range(100)]
    assert len(set(mine)) == 100
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in mine)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked child continues the same object with a prefix of its own
        os.write(write, names.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child[:16] != mine[0][:16] and child not in mine


def test_random_names_share_nothing_and_differ_per_process() -> None:
    names = RandomNames()
    mine = [names.next() for _ in range(600)]  # more than one draw from the OS
    assert len(set(mine)) == 600
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in mine)
    # No shared prefix or counter: a client seeing some learns nothing about the rest.
    assert len({n[:8] for n in mine}) > 590
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked child draws its own, never the parent's buffered ones
        os.write(write, "".join(names.next() for _ in range(10)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    os.close(write)
    parent_next = [names.next() for _ in range(10)]
    assert not {child[i : i + 32] for i in range(0, 320, 32)} & set(parent_next)
