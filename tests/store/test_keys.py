"""The shop's own secrets, on SQLite and PostgreSQL: made once, kept, the same for every reader."""

from __future__ import annotations

import threading
from collections.abc import Callable

from shopkeeper.store import Store


def counting(value: bytes) -> tuple[Callable[[], bytes], list[bytes]]:
    made: list[bytes] = []

    def new() -> bytes:
        made.append(value)
        return value

    return new, made


def test_a_secret_is_made_once_and_kept(store: Store) -> None:
    new, made = counting(b"\x00first" * 4)
    assert store.keys.secret("link_signing_key", new) == b"\x00first" * 4
    again, made_again = counting(b"second")
    assert store.keys.secret("link_signing_key", again) == b"\x00first" * 4
    assert (made, made_again) == ([b"\x00first" * 4], [])
    other, _ = counting(b"other")
    assert store.keys.secret("another", other) == b"other"


def test_workers_asking_at_once_all_get_the_one_secret_kept(store: Store) -> None:
    found: list[bytes] = []
    start = threading.Barrier(4)

    def ask(n: int) -> None:
        start.wait()
        found.append(store.keys.secret("link_signing_key", lambda: f"worker-{n}".encode()))

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(found) == 4 and len(set(found)) == 1
    assert store.keys.secret("link_signing_key", lambda: b"late") == found[0]
