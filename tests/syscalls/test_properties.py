"""Property tests, run by hypothesis inside one preloaded child (a child per example is slow).

* Applying the write and trunc records of any sequence of writes, positioned writes, vector
  writes, seeks and truncations gives back the file's real content.
* Any file name (any bytes but ``/`` and NUL) comes back in the records as ``os.fsdecode`` of
  it, however it has to be escaped in JSON.
"""

from __future__ import annotations

from pathlib import Path

from tests.syscalls.child import needs_library, ok

pytestmark = needs_library

HARNESS = """
from hypothesis import given, settings, strategies as st, HealthCheck

def records():
    os.lseek(REC, 0, os.SEEK_SET)
    with open(sys.argv[2], "rb") as f:
        lines = f.read().splitlines()
    os.ftruncate(REC, 0)
    return [json.loads(line) for line in lines]

CHECK = settings(
    max_examples=int(os.environ.get("EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
"""


def test_write_records_rebuild_the_file(tmp_path: Path) -> None:
    code = (
        HARNESS
        + """
data = st.binary(min_size=0, max_size=300)
op = st.one_of(
    st.tuples(st.just("write"), data),
    st.tuples(st.just("pwrite"), data, st.integers(0, 2000)),
    st.tuples(st.just("writev"), st.lists(data, max_size=4)),
    st.tuples(st.just("pwritev"), st.lists(data, max_size=4), st.integers(0, 2000)),
    st.tuples(st.just("seek"), st.integers(0, 2000)),
    st.tuples(st.just("trunc"), st.integers(0, 2000)),
)

@CHECK
@given(st.booleans(), st.lists(op, max_size=25))
def check(append, ops):
    path = os.path.join(ROOT, "f")
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | (os.O_APPEND if append else 0)
    with tracing(ROOT, REC):
        fd = os.open(path, flags, 0o644)
        for o in ops:
            if o[0] == "write":
                os.write(fd, o[1])
            elif o[0] == "pwrite":  # on an O_APPEND fd, Linux appends
                os.pwrite(fd, o[1], o[2])
            elif o[0] == "writev":
                os.writev(fd, o[1])
            elif o[0] == "pwritev":
                os.pwritev(fd, o[1], o[2])
            elif o[0] == "seek":
                os.lseek(fd, o[1], os.SEEK_SET)
            elif o[0] == "trunc":
                os.ftruncate(fd, o[1])
        os.close(fd)
    model = bytearray()
    for r in records():
        if r["t"] == "open":
            model = bytearray()  # O_TRUNC
        elif r["t"] == "write":
            chunk = base64.b64decode(r["data"])
            end = r["off"] + len(chunk)
            model.extend(b"\\0" * max(0, end - len(model)))
            model[r["off"]:end] = chunk
        elif r["t"] == "trunc":
            del model[r["size"]:]
            model.extend(b"\\0" * (r["size"] - len(model)))
    with open(path, "rb") as f:
        assert bytes(model) == f.read()

check()
out(done=True)
"""
    )
    assert ok(code, tmp_path / "root").out == {"done": True}


def test_any_file_name_round_trips(tmp_path: Path) -> None:
    code = (
        HARNESS
        + """
name = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\\0" not in b and b not in (b".", b"..")
)

@CHECK
@given(name)
def check(raw):
    path = os.path.join(os.fsencode(ROOT), raw)
    with tracing(ROOT, REC):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x")
        os.close(fd)
        os.unlink(path)
    paths = [(r["t"], r["path"]) for r in records()]
    expected = os.fsdecode(raw)
    assert paths == [("open", expected), ("write", expected), ("unlink", expected)]

check()
out(done=True)
"""
    )
    assert ok(code, tmp_path / "root").out == {"done": True}
