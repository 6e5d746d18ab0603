"""The hash-chained audit trail: appending, verifying, tampering, exporting."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from assay.errors import InputError
from assay.store import Store
from assay.store.audit import (
    GENESIS_HASH,
    AuditEvent,
    append_event,
    canonical_json,
    chain_head,
    event_hash,
    export_jsonl,
    format_time,
    list_events,
    verify_chain,
)


def _append(db: Store, n: int, start: int = 0) -> None:
    with db.transaction() as s:
        for i in range(start, start + n):
            append_event(s, actor="alice", action="test.event", subject_type="thing",
                         subject_id=str(i), payload={"i": i, "note": "café ✓", "x": i / 3},
                         evidence={"results": "sha256:" + hashlib.sha256(bytes([i])).hexdigest()})


def _verify(db: Store, **kw):
    with db.transaction() as s:
        return verify_chain(s, **kw)


def _drop_guard(db: Store) -> None:
    """What an attacker with DBA rights does first: remove the append-only triggers."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER audit_events_append_only ON audit_events")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")


def _sql(db: Store, *statements: str) -> None:
    with db.engine.begin() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)


# --------------------------------------------------------------------------- canonical form

def test_canonical_json_is_sorted_compact_utf8() -> None:
    got = canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
    assert got == '{"a":{"c":"é","d":[1,2]},"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


def test_format_time_is_utc_with_microseconds() -> None:
    t = datetime(2026, 11, 25, 10, 0, 0, 5, tzinfo=UTC)
    assert format_time(t) == "2026-11-25T10:00:00.000005Z"
    assert format_time(datetime(2026, 11, 25, 10)) == "2026-11-25T10:00:00.000000Z"


def test_event_hash_is_sha256_of_prev_hash_and_canonical_body(db: Store) -> None:
    _append(db, 2)
    with db.transaction() as s:
        first, second = list_events(s, newest_first=False)
        body = {k: v for k, v in first.to_dict().items() if k != "hash"}
        raw = (GENESIS_HASH + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False)).encode("utf-8")
        assert first.hash == hashlib.sha256(raw).hexdigest()
        assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
        assert (first.seq, second.seq) == (1, 2)
        assert first.created_at.endswith("Z") and len(first.created_at) == 27
        assert event_hash(first.hash, second.body()) == second.hash
        assert chain_head(s) == (2, second.hash)


def test_payload_reads_back_exactly_as_hashed(db: Store) -> None:
    when = datetime(2027, 1, 31, 12, 30, tzinfo=UTC)
    with db.transaction() as s:
        append_event(s, actor="bob", action="x", subject_type="t", subject_id=7,
                     payload={"when": when, "tags": {"b", "a"}, "f": 0.1, "big": 2**62})
    with db.transaction() as s:
        (ev,) = list_events(s)
        assert ev.payload == {"when": "2027-01-31T12:30:00.000000Z", "tags": ["a", "b"],
                              "f": 0.1, "big": 2**62}
        assert ev.subject_id == "7"
    assert _verify(db).ok


def test_bad_payload_is_refused(db: Store) -> None:
    with db.transaction() as s:
        with pytest.raises(InputError, match="payload"):
            append_event(s, actor="a", action="x", subject_type="t", subject_id="1",
                         payload={"score": float("inf")})
        with pytest.raises(InputError, match="payload"):
            append_event(s, actor="a", action="x", subject_type="t", subject_id="1",
                         payload={"obj": object()})
        with pytest.raises(InputError, match="actor"):
            append_event(s, actor="", action="x", subject_type="t", subject_id="1", payload={})


def test_an_event_rolls_back_with_its_transaction(db: Store) -> None:
    _append(db, 1)
    with pytest.raises(RuntimeError), db.transaction() as s:
        append_event(s, actor="a", action="x", subject_type="t", subject_id="1", payload={})
        raise RuntimeError("crash before commit")
    with db.transaction() as s:
        assert chain_head(s)[0] == 1
    _append(db, 1, start=1)
    assert _verify(db).ok and _verify(db).checked == 2


# --------------------------------------------------------------------------- verify

def test_intact_chain_verifies(db: Store) -> None:
    assert _verify(db).ok and _verify(db).checked == 0
    _append(db, 5)
    result = _verify(db)
    assert result.ok and result.checked == 5 and result.first_bad_seq is None
    assert result.head_seq == 5


def test_trigger_refuses_update_and_delete(db: Store) -> None:
    _append(db, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        _sql(db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    with pytest.raises(DBAPIError, match="append-only"):
        _sql(db, "DELETE FROM audit_events WHERE seq = 2")
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            _sql(db, "TRUNCATE audit_events")
    assert _verify(db).ok and _verify(db).checked == 2


def test_verify_names_an_altered_event(db: Store) -> None:
    _append(db, 5)
    _drop_guard(db)
    _sql(db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3 and "altered" in result.reason
    assert result.checked == 2


def test_verify_names_an_altered_payload(db: Store) -> None:
    _append(db, 4)
    _drop_guard(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET payload = :p WHERE seq = 2"),
                     {"p": json.dumps({"i": 1, "note": "café ✓", "x": 0.5})})
    result = _verify(db)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_verify_names_an_event_altered_and_rehashed(db: Store) -> None:
    _append(db, 4)
    _drop_guard(db)
    with db.transaction() as s:
        ev = s.get(AuditEvent, 2)
        body = ev.body() | {"actor": "mallory"}
        new_hash = event_hash(ev.prev_hash, body)
    _sql(db, f"UPDATE audit_events SET actor = 'mallory', hash = '{new_hash}' WHERE seq = 2")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 2 and "re-hashed" in result.reason


def test_verify_names_a_deleted_event(db: Store) -> None:
    _append(db, 5)
    _drop_guard(db)
    _sql(db, "DELETE FROM audit_events WHERE seq = 3")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3 and "deleted" in result.reason


def test_verify_names_a_deleted_first_event(db: Store) -> None:
    _append(db, 3)
    _drop_guard(db)
    _sql(db, "DELETE FROM audit_events WHERE seq = 1")
    result = _verify(db)
    assert (result.ok, result.first_bad_seq) == (False, 1)


def test_verify_catches_a_deletion_hidden_by_renumbering(db: Store) -> None:
    _append(db, 5)
    _drop_guard(db)
    _sql(db, "DELETE FROM audit_events WHERE seq = 3",
         "UPDATE audit_events SET seq = seq - 1 WHERE seq = 4",
         "UPDATE audit_events SET seq = seq - 1 WHERE seq = 5")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3


def test_verify_names_reordered_events(db: Store) -> None:
    _append(db, 5)
    _drop_guard(db)
    _sql(db, "UPDATE audit_events SET seq = -1 WHERE seq = 3",
         "UPDATE audit_events SET seq = 3 WHERE seq = 4",
         "UPDATE audit_events SET seq = 4 WHERE seq = -1")
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3 and "out of order" in result.reason


def test_anchor_catches_a_truncated_tail(db: Store) -> None:
    _append(db, 4)
    with db.transaction() as s:
        anchor = chain_head(s)
    assert _verify(db, anchor=anchor).ok
    _drop_guard(db)
    _sql(db, "DELETE FROM audit_events WHERE seq = 4")
    assert _verify(db).ok  # the chain alone cannot see a cut at its end
    result = _verify(db, anchor=anchor)
    assert not result.ok and result.first_bad_seq == 4 and "deleted from the end" in result.reason


def test_anchor_catches_a_rewritten_chain(db: Store) -> None:
    _append(db, 3)
    with db.transaction() as s:
        anchor = chain_head(s)
    _drop_guard(db)
    _sql(db, "DELETE FROM audit_events WHERE seq = 3")
    _append(db, 1, start=99)  # a different event 3
    result = _verify(db, anchor=anchor)
    assert not result.ok and result.first_bad_seq == 3


# --------------------------------------------------------------------------- concurrency

def test_concurrent_appends_keep_one_chain(db: Store) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                with db.transaction() as s:
                    append_event(s, actor=f"user{k}", action="race", subject_type="t",
                                 subject_id=f"{k}-{i}", payload={"k": k, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = _verify(db)
    assert result.ok and result.checked == 20


# --------------------------------------------------------------------------- export

def test_export_writes_the_chain_as_json_lines(db: Store, tmp_path) -> None:
    _append(db, 3)
    out = tmp_path / "trail.jsonl"
    with db.transaction() as s, out.open("w", encoding="utf-8") as fh:
        assert export_jsonl(s, fh) == 3
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert all(line == canonical_json(r) for line, r in zip(lines, records, strict=True))
    assert "café ✓" in lines[0]  # UTF-8, not \\u escapes
