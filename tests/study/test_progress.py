"""A run's progress: parsed once into none / bar / log; the log form writes whole lines."""

import io

import pytest

from lowbit.study.progress import LogLines, Progress, reporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_parse_names_bools_and_auto():
    assert [Progress.parse(v) for v in ("none", "bar", "log", False)] == [
        Progress.NONE, Progress.BAR, Progress.LOG, Progress.NONE,
    ]  # fmt: skip
    assert Progress.parse(Progress.LOG) is Progress.LOG
    assert Progress.parse(True, Terminal()) is Progress.BAR and Progress.parse("auto", Terminal()) is Progress.BAR
    assert Progress.parse(True, io.StringIO()) is Progress.LOG and Progress.parse("auto", io.StringIO()) is Progress.LOG


@pytest.mark.parametrize("bad", ["fancy", "", 1, None])
def test_parse_refuses_anything_else_naming_the_values(bad):
    with pytest.raises(ValueError, match=r"progress: must be one of 'none', 'bar', 'log', 'auto', True or False"):
        Progress.parse(bad)


def test_log_lines_at_each_tenth_and_at_the_end():
    out = io.StringIO()
    with LogLines(25, "s", out, clock=lambda: 0.0) as log:
        for _ in range(25):
            log.update()
    lines = out.getvalue().splitlines()
    # 25 points: a tenth is 3 points (rounded up), so lines at 3, 6, ..., 24 and the last at 25
    assert lines[0] == "s: 25 points to compute"
    assert [line.split()[1] for line in lines[1:]] == [f"{n}/25" for n in (3, 6, 9, 12, 15, 18, 21, 24, 25)]
    assert lines[1] == "s: 3/25 points (12%), 0.0 s" and lines[-1] == "s: 25/25 points (100%), 0.0 s"
    assert "\r" not in out.getvalue()


def test_log_lines_every_10_s_between_tenths():
    now = [100.0]
    out = io.StringIO()
    with LogLines(100, "s", out, clock=lambda: now[0]) as log:
        for seconds in (4.0, 6.5, 1.0, 12.0):  # points 1 to 4 finish at 104, 110.5, 111.5, 123.5 s
            now[0] += seconds
            log.update()
    # 10 points to a tenth: only the clock writes lines, at 10.5 s and at 23.5 s (12 s after the last)
    assert out.getvalue().splitlines()[1:] == ["s: 2/100 points (2%), 10.5 s", "s: 4/100 points (4%), 23.5 s"]


def test_reporter_kinds():
    quiet = io.StringIO()
    with reporter(Progress.NONE, 5, "s", quiet) as r:
        r.update()
    with reporter(Progress.LOG, 0, "s", quiet) as r:  # nothing to compute: nothing shown
        pass
    assert quiet.getvalue() == ""
    bar = io.StringIO()
    with reporter(Progress.BAR, 2, "s", bar) as r:
        r.update()
        r.update()
    assert "\r" in bar.getvalue() and "2/2" in bar.getvalue()
