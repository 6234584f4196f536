"""Replica leases on SQLite and PostgreSQL: each SLO taken by one replica per tick, freed when its
holder goes away, handed back on SIGTERM; fleet jobs run by one replica per period; outbox claims."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.store import groups, leases, outbox, repo
from tests.store.test_repo import NOW, _slo

TICK = NOW
NEXT = NOW + timedelta(minutes=1)
TTL = timedelta(minutes=1)


def _slos(engine: Engine, count: int) -> None:
    with Session(engine) as session:
        for i in range(count):
            _slo(session, name=f"slo-{i:02d}")
        session.commit()
        leases.add_missing(session=session)
        leases.add_missing(session=session)  # a second replica adding them too changes nothing
        session.commit()


def _claim(engine: Engine, holder: str, tick=TICK, now=NOW, limit: int = 100) -> list[int]:
    with Session(engine) as session:
        ids = leases.claim(session=session, holder=holder, tick=tick, now=now, ttl=TTL, limit=limit)
        session.commit()
    return ids


def _complete(engine: Engine, ids: list[int], holder: str, tick=TICK) -> list[bool]:
    with Session(engine) as session:
        done = [leases.complete(session=session, slo_id=i, holder=holder, tick=tick, now=NOW) for i in ids]
        session.commit()
    return done


def test_a_tick_gives_each_slo_to_one_replica_and_the_next_tick_gives_them_out_again(engine: Engine) -> None:
    _slos(engine, 10)
    first = _claim(engine, "a", limit=4)
    second = _claim(engine, "b", limit=100)
    assert len(first) == 4 and len(second) == 6 and not set(first) & set(second)
    assert _claim(engine, "c") == []  # nothing left in this tick
    assert all(_complete(engine, first, "a")) and all(_complete(engine, second, "b"))
    assert _claim(engine, "c") == []  # done in this tick: not evaluated twice
    assert sorted(_claim(engine, "c", tick=NEXT)) == sorted(first + second)


def test_a_lease_whose_replica_died_is_taken_over_once_it_expires(engine: Engine) -> None:
    _slos(engine, 3)
    dead = _claim(engine, "killed")
    assert _claim(engine, "alive", now=NOW + TTL / 2) == []  # still held
    # the next tick does not take an SLO whose lease is live either: its holder may still finish
    assert _claim(engine, "alive", tick=NEXT, now=NOW + TTL / 2) == []
    taken = _claim(engine, "alive", tick=NEXT, now=NOW + TTL + timedelta(seconds=1))
    assert taken == dead
    # the dead replica's late result is refused: the SLO's tick is the new holder's
    assert _complete(engine, dead, "killed") == [False] * 3
    assert _complete(engine, taken, "alive", tick=NEXT) == [True] * 3


def test_handed_back_slos_are_free_at_once_in_the_same_tick(engine: Engine) -> None:
    _slos(engine, 4)
    taken = _claim(engine, "stopping")
    with Session(engine) as session:
        assert leases.others_unfinished(session=session, holder="other", tick=TICK) == 4
        leases.hand_back(session=session, slo_ids=taken[2:], holder="stopping", tick=TICK)
        session.commit()
    assert _claim(engine, "other") == taken[2:]
    with Session(engine) as session:
        assert leases.others_unfinished(session=session, holder="other", tick=TICK) == 2


def test_renewed_leases_outlive_their_first_expiry(engine: Engine) -> None:
    _slos(engine, 2)
    taken = _claim(engine, "slow")
    with Session(engine) as session:
        leases.renew(session=session, holder="slow", tick=TICK, until=NOW + 3 * TTL)
        session.commit()
    assert _claim(engine, "other", now=NOW + 2 * TTL) == []
    assert _complete(engine, taken, "slow") == [True, True]


def test_a_removed_slo_takes_its_lease_with_it(engine: Engine) -> None:
    _slos(engine, 2)
    with Session(engine) as session:
        assert repo.delete_slos_except(session=session, keep=["slo-01"]) == ["slo-00"]
        session.commit()
    assert len(_claim(engine, "a")) == 1


@pytest.mark.parametrize("replicas", [4])
def test_replicas_claiming_at_once_never_share_an_slo(engine: Engine, replicas: int) -> None:
    _slos(engine, 60)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(replicas)

    def replica(name: str) -> None:
        start.wait()
        mine: list[int] = []
        while batch := _claim(engine, name, limit=3):
            mine += batch
        got[name] = mine

    threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [slo_id for ids in got.values() for slo_id in ids]
    assert len(every) == 60 and len(set(every)) == 60


def test_a_fleet_job_runs_on_one_replica_per_period(engine: Engine) -> None:
    every = timedelta(minutes=10)

    def claim(holder: str, at):
        with Session(engine) as session:
            won = leases.claim_job(session=session, name="prune", holder=holder, now=at, every=every)
            session.commit()
        return won

    assert claim("a", NOW) is True
    assert claim("b", NOW) is False
    assert claim("b", NOW + every / 2) is False
    assert claim("b", NOW + every) is True
    assert claim("a", NOW + every) is False


def test_an_outbox_entry_is_claimed_by_one_replica_until_released_or_expired(engine: Engine) -> None:
    ttl = timedelta(minutes=2)
    with Session(engine) as session:
        entry = outbox.enqueue(session=session, kind="incident", now=NOW, channel="pd")
        session.commit()
        entry_id = entry.id or 0

    def claim(holder: str, at) -> bool:
        with Session(engine) as session:
            won = outbox.claim(session=session, entry_id=entry_id, holder=holder, now=at, ttl=ttl)
            session.commit()
        return won

    def due(at) -> list[int]:
        with Session(engine) as session:
            return [e.id or 0 for e in outbox.due(session=session, kinds=["incident"], now=at)]

    assert due(NOW) == [entry_id]
    assert claim("a", NOW) is True
    assert claim("b", NOW) is False
    assert due(NOW) == []  # another replica's: not even read
    with Session(engine) as session:
        outbox.release(session=session, entry_id=entry_id, holder="a")
        session.commit()
    assert claim("b", NOW) is True
    # b is killed mid-call: its claim expires and a takes the entry over
    assert claim("a", NOW + ttl / 2) is False
    assert claim("a", NOW + ttl + timedelta(seconds=1)) is True


def test_a_grouped_slos_members_go_with_their_definition_and_are_never_leased_alone(engine: Engine) -> None:
    # a member leased on its own was evaluated a second time in the tick, with queries of its own
    with Session(engine) as session:
        _slo(session, name="plain")
        _slo(session, name="routes")
        definition = repo.get_slo(session=session, name="routes")
        assert definition is not None
        for route in ("/a", "/b", "/c"):
            groups.add_member(
                session=session, definition=definition, name=f"routes[{route}]", key=[route], now=NOW
            )
        session.commit()
        leases.add_missing(session=session)
        session.commit()
        ids = {r.name: r.id for r in repo.list_slos(session=session, members=True)}
    taken = _claim(engine, "a")
    assert sorted(taken) == sorted([ids["plain"], ids["routes"]])
    assert _claim(engine, "b") == []  # the members are not left over for another replica
    assert all(_complete(engine, taken, "a"))
    assert sorted(_claim(engine, "c", tick=NEXT)) == sorted(taken)


def test_delivered_entries_are_purged_by_one_replica_per_period(engine: Engine) -> None:
    from sqlmodel import select

    from bot.store.models import FleetJobRecord, OutboxRecord
    from bot.worker import KEEP_DONE, OutboxWorker

    class Worker(OutboxWorker):
        name = "notes"
        kinds = ("thread_note",)

        def _deliver(self, entry_id: int) -> bool:
            return True

    now = NOW + KEEP_DONE + timedelta(days=1)
    with Session(engine) as session:
        old = outbox.enqueue(session=session, kind="thread_note", now=NOW)
        old.status, old.done_at = "done", NOW
        session.commit()
    workers = [Worker(engine, clock=lambda: now, replica=name) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    for worker in workers:
        worker.stop()
    with Session(engine) as session:
        assert session.exec(select(OutboxRecord)).all() == []
        (job,) = session.exec(select(FleetJobRecord)).all()
        assert job.name == "purge-notes" and job.holder in ("a", "b")


def test_a_restarted_process_frees_what_its_dead_predecessor_held(engine: Engine) -> None:
    import os
    import socket
    import subprocess
    import sys

    from bot.fleet import gone

    _slos(engine, 3)
    # a process of this host that has exited since, one still running (this test), another host's
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_name = f"{socket.gethostname()}:{dead.stdout.strip()}"
    alive_name = f"{socket.gethostname()}:{os.getppid()}"
    taken = {name: _claim(engine, name, limit=1) for name in (dead_name, alive_name, "other-host:7")}
    with Session(engine) as session:
        entry = outbox.enqueue(session=session, kind="incident", now=NOW, channel="pd")
        session.commit()
        entry_id = entry.id or 0
        assert outbox.claim(session=session, entry_id=entry_id, holder=dead_name, now=NOW, ttl=TTL)
        session.commit()
        held = leases.holders(session=session)
    assert held == {dead_name, alive_name, "other-host:7"}
    assert gone(held, me="pod-a") == {dead_name}
    assert gone(held, me="other-host:7") == {dead_name, "other-host:7"}  # a restarted pod's own name
    assert gone(held, me="x", everyone_else=True) == held  # SQLite: one process holds the database
    with Session(engine) as session:
        assert leases.release(session=session, holder=dead_name) == 2  # its lease and its claim
        session.commit()
    assert _claim(engine, "pod-a") == taken[dead_name]  # free at once, in the same tick
    with Session(engine) as session:
        assert [e.id for e in outbox.due(session=session, kinds=["incident"], now=NOW)] == [entry_id]
