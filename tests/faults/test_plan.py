from __future__ import annotations

import errno
import json
import os
import sqlite3
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.faults import FaultArgumentError, FaultInjector, FaultPlan, FaultSpec
from pytest_edge.faults.plan import register_exception
from pytest_edge.strategies import fault_plans
from tests.faults import helpers

EXAMPLE = """\
[[faults]]
kind = "fail"
target = "os.fsync"
exc = { type = "OSError", args = [5, "Input/output error"] }
nth = 2

[[faults]]
kind = "disk_full"
path = "/var/lib/app"
free_bytes = 4096

[[faults]]
kind = "sqlite"
db_path = "/var/lib/app/app.db"
error = "ioerr"
every = 3
times = "unlimited"
"""


def test_toml_example_loads_and_round_trips() -> None:
    plan = FaultPlan.from_toml(EXAMPLE)
    assert [f.kind for f in plan.faults] == ["fail", "disk_full", "sqlite"]
    assert plan.faults[0].options["exc"] == {"type": "OSError", "args": [5, "Input/output error"]}
    assert FaultPlan.from_toml(plan.to_toml()) == plan
    assert FaultPlan.from_dict(plan.to_dict()) == plan
    assert FaultPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert tomllib.loads(plan.to_toml()) == plan.to_dict()


def test_defaults_are_omitted_not_null() -> None:
    spec = FaultSpec("io_error", {"path": "/d", "on": "write", "times": 1, "nth": None})
    assert spec.to_dict() == {"kind": "io_error", "path": "/d"}
    unlimited = FaultSpec("fail", {"target": "os.fsync", "exc": TimeoutError(), "times": None})
    assert unlimited.to_dict()["times"] == "unlimited"
    assert unlimited.arguments()["times"] is None


def test_the_injector_reports_what_it_armed_as_a_plan(tmp_path: Path) -> None:
    with FaultInjector() as faults:
        faults.fail("os.fsync", OSError(errno.EIO, "Input/output error"), nth=2)
        faults.disk_full(tmp_path, free_bytes=10)
        plan = faults.plan()
    assert plan.to_dict() == {
        "faults": [
            {
                "kind": "fail",
                "target": "os.fsync",
                "exc": {"type": "OSError", "args": [5, "Input/output error"]},
                "nth": 2,
            },
            {"kind": "disk_full", "path": str(tmp_path.resolve()), "free_bytes": 10},
        ]
    }


def test_apply_arms_a_plan_and_replays_it(tmp_path: Path) -> None:
    plan = FaultPlan.from_dict(
        {
            "faults": [
                {
                    "kind": "fail",
                    "target": "tests.faults.helpers.ping",
                    "exc": {"type": "TimeoutError", "args": ["slow backend"]},
                    "every": 2,
                    "times": "unlimited",
                },
                {"kind": "read_only", "path": str(tmp_path)},
            ]
        }
    )
    with FaultInjector() as faults:
        armed = faults.apply(plan)
        assert [a.kind for a in armed] == ["fail", "read_only"]
        assert helpers.ping() == 1
        with pytest.raises(TimeoutError, match="slow backend"):
            helpers.ping()
        with pytest.raises(OSError, match="Read-only"):
            (tmp_path / "x").write_text("x")
        assert faults.plan().faults[0] == plan.faults[0]


def test_apply_undoes_earlier_faults_when_one_cannot_be_armed() -> None:
    plan = FaultPlan(
        (
            FaultSpec("fail", {"target": "os.fsync", "exc": OSError()}),
            FaultSpec("fail", {"target": "no_such_pkg_q.f", "exc": OSError()}),
        )
    )
    before = os.fsync
    with FaultInjector() as faults, pytest.raises(FaultArgumentError, match="no_such_pkg_q"):
        faults.apply(plan)
    assert os.fsync is before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"faults": [{"kind": "explode"}]}, r"plan.faults\[0\].kind='explode': unknown fault kind"),
        ({"faults": [{"kind": "fail", "target": "os.fsync"}]}, r"fail needs option 'exc'"),
        (
            {"faults": [{"kind": "read_only", "path": "/x", "nth": 2}]},
            r"read_only has no option 'nth'",
        ),
        (
            {"faults": [{"kind": "io_error", "path": 5}]},
            r"plan.faults\[0\].path=5: expected a file or directory path",
        ),
        ({"faults": [{"path": "/x"}]}, r"expected a table with a 'kind'"),
        ({"faults": {}, "seed": 1}, r"unexpected \['seed'\]"),
        (
            {
                "faults": [
                    {
                        "kind": "fail",
                        "target": "os.fsync",
                        "exc": {"type": "__import__('os').system", "args": []},
                    }
                ]
            },
            r"exc.type=\"__import__\('os'\).system\": not an allowed exception class",
        ),
        (
            {
                "faults": [
                    {"kind": "fail", "target": "os.fsync", "exc": {"type": "os.system"}},
                ]
            },
            r"not an allowed exception class",
        ),
        (
            {"faults": [{"kind": "fail", "target": "os.fsync", "exc": {"type": "object"}}]},
            r"not an allowed exception class",
        ),
    ],
)
def test_bad_plans_are_clear_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(FaultArgumentError, match=message):
        FaultPlan.from_dict(data)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("nth = 0", r"my.toml.faults\[1\].nth=0: must be a whole number >= 1"),
        ("times = -2", r"my.toml.faults\[1\].times=-2: must be a whole number >= 1, or None"),
        ("probability = 1.5", r"my.toml.faults\[1\].probability=1.5: must be a number from 0 to 1"),
        ("every = true", r"my.toml.faults\[1\].every=True: must be a whole number >= 1"),
        ("window = [2, 1]", r"my.toml.faults\[1\].window=\[2, 1\]: must be \(start, end\)"),
        ("on = 'flush'", r"my.toml.faults\[1\].on='flush': unknown; use one of 'write'"),
        ("nht = 2", r"my.toml.faults\[1\]: io_error has no option 'nht' \(did you mean 'nth'\?\)"),
    ],
)
def test_plan_values_are_checked_with_their_key_path(option: str, message: str) -> None:
    """Issue 15: from_toml accepted nth=0, times=-2 and probability=1.5, and a later error
    lost the fault's index."""
    first = '[[faults]]\nkind = "read_only"\npath = "/x"\n\n'
    text = f'{first}[[faults]]\nkind = "io_error"\npath = "/x"\n{option}\n'
    with pytest.raises(FaultArgumentError, match=message):
        FaultPlan.from_toml(text, source="my.toml")


def test_plan_errors_keep_the_fault_index_inside_tables() -> None:
    data = {
        "faults": [
            {"kind": "read_only", "path": "/x"},
            {"kind": "fail", "target": "os.fsync", "exc": {"type": "OSError", "args": [[1]]}},
        ]
    }
    with pytest.raises(
        FaultArgumentError, match=r"plan.faults\[1\].exc.args=\[\[1\]\]: expected a list"
    ):
        FaultPlan.from_dict(data)


def test_bad_toml_is_a_clear_error() -> None:
    with pytest.raises(FaultArgumentError, match=r"my.toml: not valid TOML"):
        FaultPlan.from_toml("[[faults]\nkind=", source="my.toml")


def test_exceptions_outside_the_allow_list_need_registering() -> None:
    class BackendDown(RuntimeError):
        pass

    with pytest.raises(FaultArgumentError, match="register it with"):
        FaultSpec("fail", {"target": "os.fsync", "exc": BackendDown("x")})
    register_exception(BackendDown)
    spec = FaultSpec("fail", {"target": "os.fsync", "exc": BackendDown("x")})
    assert spec.to_dict()["exc"]["type"].endswith("BackendDown")
    assert isinstance(spec.arguments()["exc"], BackendDown)
    assert isinstance(
        FaultSpec("fail", {"target": "os.fsync", "exc": sqlite3.OperationalError("x")}).arguments()[
            "exc"
        ],
        sqlite3.OperationalError,
    )


def test_exception_arguments_must_be_plain_data() -> None:
    with pytest.raises(FaultArgumentError, match="is not plain data"):
        FaultSpec("fail", {"target": "os.fsync", "exc": ValueError(object())})


_text = st.text(st.characters(codec="utf-8"), max_size=20)


@given(
    plan=fault_plans(
        targets=["os.fsync", "tests.faults.helpers.ping"],
        paths=["/tmp/a", 'C:\\odd "path"\n\t\x7f'],
        db_paths=["/tmp/a.db"],
        kinds=[
            "fail",
            "slow",
            "io_error",
            "slow_io",
            "disk_full",
            "read_only",
            "sqlite",
            "network",
            "memory_pressure",
        ],
        max_faults=4,
    ),
    message=_text,
)
def test_any_generated_plan_round_trips(plan: FaultPlan, message: str) -> None:
    extra = FaultSpec("fail", {"target": "os.fsync", "exc": OSError(errno.EIO, message)})
    plan = FaultPlan((*plan.faults, extra))
    assert FaultPlan.from_toml(plan.to_toml()) == plan
    assert FaultPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert tomllib.loads(plan.to_toml()) == plan.to_dict()


def test_short_write_round_trips_in_a_plan(tmp_path: Path) -> None:
    plan = FaultPlan.from_toml(
        f'[[faults]]\nkind = "io_error"\npath = "{tmp_path}"\nshort_write = true\nnth = 2\n'
    )
    assert FaultPlan.from_toml(plan.to_toml()) == plan
    with FaultInjector() as faults:
        (armed,) = faults.apply(plan)
        assert armed.options["short_write"] is True


def test_the_cheap_kind_list_matches_the_declarations() -> None:
    """The plugin reads kinds.FAULT_KINDS without building the declarations: same kinds."""
    from pytest_edge.faults.declarations import KINDS
    from pytest_edge.faults.kinds import FAULT_KINDS

    assert tuple(KINDS) == FAULT_KINDS


@pytest.mark.parametrize(
    "name", ["KeyboardInterrupt", "SystemExit", "GeneratorExit", "BaseException"]
)
def test_exceptions_that_end_the_session_are_refused_naming_what_is_allowed(name: str) -> None:
    text = f'[[faults]]\nkind = "fail"\ntarget = "os.fsync"\nexc = {{ type = "{name}" }}\n'
    with pytest.raises(FaultArgumentError) as info:
        FaultPlan.from_toml(text, source="my.toml")
    assert str(info.value).startswith(
        f"my.toml.faults[0].exc.type='{name}': not allowed; use an Exception subclass"
    )
    assert "would end the pytest session" in str(info.value)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit(1), GeneratorExit()])
def test_python_api_refuses_exceptions_that_end_the_session(exc: object) -> None:
    with pytest.raises(FaultArgumentError, match=r"exc=.*of an Exception subclass"):
        FaultSpec("fail", {"target": "os.fsync", "exc": exc})
    with pytest.raises(FaultArgumentError, match="expected an Exception subclass"):
        register_exception(KeyboardInterrupt)


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            '{ type = "OSError", args = [1, 2, 3, 4, 5, 6, 7] }',
            r"my.toml.faults\[0\].exc.args=\[1, 2, 3, 4, 5, 6, 7\]: OSError takes at most 5 "
            r"arguments \(errno, strerror, filename, winerror, filename2\), got 7",
        ),
        (
            '{ type = "OSError", args = ["EIO", "disk"] }',
            r"exc.args=\['EIO', 'disk'\]: OSError's first argument is the errno",
        ),
        (
            '{ type = "UnicodeDecodeError", args = ["x"] }',
            r"exc.args=\['x'\]: UnicodeDecodeError cannot be built from these arguments "
            r"\(TypeError: function takes exactly 5 arguments \(1 given\)\)",
        ),
    ],
)
def test_exception_arguments_that_do_not_fit_the_class_fail_at_load(exc: str, message: str) -> None:
    text = f'[[faults]]\nkind = "fail"\ntarget = "os.fsync"\nexc = {exc}\n'
    with pytest.raises(FaultArgumentError, match=message):
        FaultPlan.from_toml(text, source="my.toml")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            'kind = "slow"\ntarget = "os.fsync"\nseconds = 1e10',
            r"faults\[0\].seconds=10000000000.0: must be a number of seconds from 0 to 2147483647 "
            r"\(the longest timer a 32-bit OS clock takes",
        ),
        (
            'kind = "slow_io"\npath = "/x"\nseconds = 1e300',
            r"faults\[0\].seconds=1e\+300: must be a number of seconds from 0 to 2147483647",
        ),
        (
            'kind = "memory_pressure"\nmb = 1e20',
            r"faults\[0\].mb=1e\+20: must be a number of MB > 0 and <= 8796093022207 "
            r"\(the most memory a process can address\)",
        ),
        (
            'kind = "sqlite"\ndb_path = "/x.db"\nerror = "full"\nextra_pages = 4294967295',
            r"faults\[0\].extra_pages=4294967295: must be a whole number from 0 to 4294967294 "
            r"\(SQLite's largest max_page_count\)",
        ),
        (
            'kind = "sqlite"\ndb_path = "/x.db"\nerror = "locked"\nbusy_timeout = 1e7',
            r"faults\[0\].busy_timeout=10000000.0: must be a number of seconds from 0 to 2147483 "
            r"\(SQLite's busy timeout is a C int of milliseconds\)",
        ),
    ],
)
def test_numbers_are_bounded_where_the_os_bounds_them(option: str, message: str) -> None:
    with pytest.raises(FaultArgumentError, match=message):
        FaultPlan.from_toml(f"[[faults]]\n{option}\n", source="my.toml")


def test_an_arming_error_names_the_fault_of_the_plan() -> None:
    plan = FaultPlan.from_toml(
        '[[faults]]\nkind = "slow"\ntarget = "os.fsync"\nseconds = 0\n'
        '[[faults]]\nkind = "fail"\ntarget = "nowhere_at_all.fn"\nexc = { type = "OSError" }\n'
    )
    original = os.fsync
    with FaultInjector() as faults:
        with pytest.raises(FaultArgumentError) as info:
            faults.apply(plan)
        assert os.fsync is original  # the first fault was undone
    assert str(info.value).startswith(
        "faults[1].target='nowhere_at_all.fn': cannot import module 'nowhere_at_all'"
    )
