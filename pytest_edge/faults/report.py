"""The faults section of the edge report: every armed fault's verdict, the unfired ones first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pytest_edge.faults.verdict import FS_KINDS, PYTHON_LAYER_MISSES, FaultVerdict
from pytest_edge.report.model import Block, Paragraph, Section, Table

#: Rows of the per-fault table shown at most (the JSON data keeps every verdict).
MAX_ROWS = 200


def faults_section(verdicts: Sequence[FaultVerdict]) -> Section:
    """Totals by kind and layer, then one warning per fault that never fired."""
    unfired = [v for v in verdicts if v.never_fired]
    tests = len({v.test for v in verdicts})
    summary = (
        f"{len(verdicts)} faults armed in {tests} tests; "
        f"{len(verdicts) - len(unfired)} fired or were in effect, {len(unfired)} never fired."
    )
    blocks: list[Block] = [Paragraph(summary)]
    armed: Counter[tuple[str, str]] = Counter()
    fired: Counter[tuple[str, str]] = Counter()
    for v in verdicts:
        armed[v.kind, v.layer] += 1
        fired[v.kind, v.layer] += 0 if v.never_fired else 1
    blocks.append(
        Table(
            ("fault", "layer", "armed", "fired", "never fired"),
            tuple(
                (kind, layer, str(n), str(fired[kind, layer]), str(n - fired[kind, layer]))
                for (kind, layer), n in sorted(armed.items())
            ),
            caption="Armed faults by kind and the layer that observed the I/O",
        )
    )
    if unfired:
        rows = tuple(
            (v.test, v.described, v.layer, str(v.calls), v.maybe or "-") for v in unfired[:MAX_ROWS]
        )
        blocks.append(
            Table(
                ("test", "fault", "layer", "calls reaching it", "may legitimately not fire"),
                rows,
                caption="Faults that never fired: those tests did not exercise them",
            )
        )
        if len(unfired) > MAX_ROWS:
            blocks.append(
                Paragraph(f"{len(unfired) - MAX_ROWS} more in the JSON report's data.", "note")
            )
        if any(v.layer == "python" and v.calls == 0 and v.kind in FS_KINDS for v in unfired):
            blocks.append(Paragraph(f"File faults that no call reached: {PYTHON_LAYER_MISSES}."))
    return Section(
        key="faults",
        title="Faults",
        blocks=tuple(blocks),
        status="warning" if unfired else "ok",
        order=40,
        data={"verdicts": [v.to_data() for v in verdicts]},
    )
