"""The chapter's cells 3-7 run unchanged and print real, sensible values."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.reference_impl.notebook import run_cells


def test_cells_3_to_7_run_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    threads_before = set(threading.enumerate())
    namespace = run_cells([3, 4, 5, 6, 7], tmp_path)
    out = capsys.readouterr().out

    # Cells 3-4: the conversation is recorded, statistics add up, retrieval finds the turns.
    stats = namespace["stats"]
    assert stats["total_messages"] == 6
    assert stats["total_tokens"] == 20 + 25 + 18 + 22 + 19 + 24
    assert stats["buffer_messages"] + stats["summarized_messages"] == 6
    pandas_block = out.split("Query: 'pandas matplotlib'")[1].split("Generating Final Prompt")[0]
    assert "Found 3 semantic matches" in pandas_block
    assert "I'm trying to analyze sales data using pandas" in pandas_block
    assert "Great! Pandas and matplotlib are excellent" in pandas_block
    scores = [float(s) for s in re.findall(r"score: ([0-9.]+)", pandas_block)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0
    final_prompt = namespace["final_prompt"]
    assert "Can you help me create a bar chart showing monthly sales?" in final_prompt
    assert "Perfect! For trend analysis" in final_prompt  # the newest turn, verbatim

    # Cell 5: every request answered, by id, and the engine's threads are gone.
    assert sorted(r["id"] for r in namespace["responses"]) == ["req_1", "req_2", "req_3", "req_4"]
    assert all(r["ok"] and r["result"] for r in namespace["responses"])
    assert namespace["engine"].state == "stopped"
    assert set(threading.enumerate()) <= threads_before

    # Cell 6: real embeddings and a search that ranks the neural-network text first.
    assert len(namespace["embeddings"]) == 5
    assert namespace["search_results"][0]["id"] == "doc_1"  # "Deep learning uses neural networks"
    assert "-> [" in out  # numpy arrays print inside the notebook namespace

    # Cell 7: one reading per core and a plan per workload kind.
    assert len(namespace["core_usage"]) == namespace["optimizer"].cpu_count
    assert re.search(r"cpu_bound: \d+ workers, process threading", out)
