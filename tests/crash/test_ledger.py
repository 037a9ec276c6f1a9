"""The acknowledgement ledger: what recovery must return after a given record sequence."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.crash.harness import Ledger

keys = st.sampled_from(["a", "b", "c"])
values = st.one_of(st.none(), st.integers(0, 3).map(str))  # canonical JSON text or deletion
records = st.lists(
    st.tuples(st.sampled_from(["ack", "intent"]), keys, values).map(
        lambda r: {"t": r[0], "key": r[1], "v": r[2]}
    ),
    max_size=15,
)


def _last_acked(recs: list[dict[str, Any]]) -> dict[str, str | None]:
    last: dict[str, str | None] = {}
    for r in recs:
        if r["t"] == "ack":
            last[r["key"]] = r["v"]
    return last


@given(recs=records)
def test_the_last_acknowledged_values_always_pass(recs: list[dict[str, Any]]) -> None:
    ledger = Ledger()
    for r in recs:
        ledger.apply(r)
    recovered = {k: v for k, v in _last_acked(recs).items() if v is not None}
    assert ledger.losses(recovered, None) == ()


@given(recs=records, key=keys)
def test_a_value_never_acked_nor_intended_is_a_loss(recs: list[dict[str, Any]], key: str) -> None:
    ledger = Ledger()
    for r in recs:
        ledger.apply(r)
    last = _last_acked(recs)
    recovered = {k: v for k, v in last.items() if v is not None}
    if key not in last:
        return
    recovered[key] = '"never written"'
    (loss,) = ledger.losses(recovered, None)
    assert loss.key == key
    assert loss.kind == ("resurrected" if last[key] is None else "changed")


@given(recs=records)
def test_intents_after_the_last_ack_are_allowed_and_settle_pins_them(
    recs: list[dict[str, Any]],
) -> None:
    ledger = Ledger()
    for r in recs:
        ledger.apply(r)
    recovered: dict[str, str] = {}
    for key, (value, alternatives) in ledger.entries.items():
        chosen = alternatives[-1] if alternatives else value
        if chosen is not None:
            recovered[key] = chosen
    assert ledger.losses(recovered, None) == ()
    ledger.settle(recovered)
    assert all(not alternatives for _, alternatives in ledger.entries.values())
    assert ledger.losses(recovered, None) == ()


def test_raising_recover_loses_every_live_key() -> None:
    ledger = Ledger()
    for r in ({"t": "ack", "key": "a", "v": "1"}, {"t": "ack", "key": "b", "v": None}):
        ledger.apply(r)
    (loss,) = ledger.losses(None, None)
    assert (loss.key, loss.got) == ("a", "<recover raised>")
