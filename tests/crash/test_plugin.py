"""The edge_crash fixture end to end: passing runs, the failure report, the run seed."""

from __future__ import annotations

import pytest

WORKLOADS = """
import json, os
import pytest_edge


def load(state_dir):
    try:
        with open(os.path.join(state_dir, "s.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def safe(state_dir):
    state = load(state_dir)
    i = len(state)
    while True:
        state[f"user:{i}"] = {"name": f"Ada {i}"}
        path = os.path.join(state_dir, "s.json")
        with open(path + ".tmp", "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        fd = os.open(state_dir, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        pytest_edge.ack(f"user:{i}", {"name": f"Ada {i}"})
        pytest_edge.crashpoint("after-save")
        i += 1


def careless(state_dir):
    state = load(state_dir)
    i = len(state)
    while True:
        state[f"user:{i}"] = i
        with open(os.path.join(state_dir, "s.json"), "w") as f:
            json.dump(state, f)
        pytest_edge.ack(f"user:{i}", i)
        i += 1


def recover(state_dir):
    return load(state_dir)
"""


def test_fixture_runs_cycles_and_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        crashwork=WORKLOADS,
        test_it="""
        from crashwork import safe, recover

        def test_no_lost_writes(edge_crash, tmp_path):
            report = edge_crash.run(safe, recover, state_dir=tmp_path, cycles=8, seed=1)
            report.assert_ok()
            print(report.summary())

        def test_power_loss(edge_crash, tmp_path):
            report = edge_crash.run("crashwork:safe", "crashwork:recover", state_dir=tmp_path,
                                    cycles=4, mode="power-loss", kill="crashpoint:after-save:2")
            report.assert_ok()
            print(report.summary())
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*crash harness (kill, seed 1): 8 cycles, * acknowledged writes, 0 lost or changed",
            "*crash harness (power-loss, seed *): 4 cycles, 8 acknowledged writes, 0 lost or "
            "changed, * crash states checked (of * candidates); verdict pass; observed at: *",
        ]
    )


def test_failure_report_names_keys_cycle_seed_and_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        crashwork=WORKLOADS,
        test_it="""
        from crashwork import careless, recover

        def test_careless(edge_crash, tmp_path):
            edge_crash.run(careless, recover, state_dir=tmp_path, cycles=50).assert_ok()
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--edge-seed=4321")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "E *LostWritesError: crash harness (kill, seed 4321): * cycles, * lost or changed",
            "E * cycle * (seed 4321, mode kill): kill point random: before *",
            "E * recover raised: JSONDecodeError*",
            "E * lost 'user:0': acknowledged *, recovered <recover raised>",
            "E * replay: pass seed=4321 (or run pytest with --edge-seed)",
        ]
    )


def test_run_seed_is_the_default_and_explicit_seed_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        crashwork=WORKLOADS,
        test_it="""
        from crashwork import safe, recover

        def test_seeds(edge_crash, tmp_path):
            default = edge_crash.run(safe, recover, state_dir=tmp_path / "a", cycles=1)
            explicit = edge_crash.run(safe, recover, state_dir=tmp_path / "b", cycles=1, seed=5)
            print(f"SEEDS={default.seed},{explicit.seed}")
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest("-s", "--edge-seed=777")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SEEDS=777,5*"])


def test_timeout_error_names_the_cycle(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        crashwork=WORKLOADS,
        test_it="""
        from crashwork import safe, recover

        def test_never(edge_crash, tmp_path):
            edge_crash.run(safe, recover, state_dir=tmp_path, kill="crashpoint:nowhere",
                           timeout=0.5)
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *CrashTimeoutError: cycle 1 (seed *): the workload ran for 0.5 s without reaching "
            "kill point 'crashpoint:nowhere:1'*"
        ]
    )


def test_workload_defined_in_the_test_module_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inline="""
        import os
        import pytest_edge

        def workload(state_dir):
            path = os.path.join(state_dir, "n")
            n = int(open(path).read()) if os.path.exists(path) else 0
            while True:
                n += 1
                pytest_edge.intent("n", n)
                with open(path, "w") as f:
                    f.write(str(n))
                pytest_edge.ack("n", n)

        def recover(state_dir):
            path = os.path.join(state_dir, "n")
            text = open(path).read() if os.path.exists(path) else ""
            return {"n": int(text)} if text else {}

        def test_inline(edge_crash, tmp_path):
            report = edge_crash.run(workload, recover, state_dir=tmp_path, cycles=5, kill="acks:3")
            report.assert_ok()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
