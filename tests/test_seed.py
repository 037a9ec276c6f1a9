"""The run seed: chosen once, printed, settable, shared with xdist workers."""

from __future__ import annotations

import pytest

SEED_TEST = """
def test_seed(edge_seed):
    print(f"SEED={edge_seed}")
"""


def test_header_names_seed_and_how_to_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SEED_TEST)
    result = pytester.runpytest("--edge-seed=1234", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edge: seed 1234 (replay with --edge-seed=1234)", "*SEED=1234*"])


def test_random_seed_when_not_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SEED_TEST)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edge: seed * (replay with --edge-seed=*)"])


@pytest.mark.parametrize("bad", ["abc", "-1", str(2**32)])
def test_bad_seed_is_a_usage_error(pytester: pytest.Pytester, bad: str) -> None:
    result = pytester.runpytest(f"--edge-seed={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-seed*"])


def test_xdist_workers_share_the_controllers_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_seed(edge_seed, i, worker_id):
            assert edge_seed == 987
        """
    )
    result = pytester.runpytest("-n", "2", "--edge-seed=987")
    result.assert_outcomes(passed=4)
