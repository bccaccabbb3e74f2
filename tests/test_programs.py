"""What the tests use is said in one place, in the README, and asked for in one way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import programs

REPO = Path(__file__).resolve().parents[1]


def readme_programs() -> set[str]:
    """The first column of README.md's table under "What the tests use"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### What the tests use", 1)[1].split("\n#", 1)[0]
    return {m.group(1).strip("` ") for m in re.finditer(r"^\| ([^|]+) \|", section, re.M)} - {
        "program",
        "---",
    }


def test_the_readme_lists_every_program_the_tests_use():
    assert readme_programs() == {p.name for p in programs.PROGRAMS}


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_program_skips_off_ci_and_fails_on_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setitem(
        programs.BY_NAME,
        "chromium",
        programs.Program("chromium", "screenshots", "apt-get install chromium", lambda: None),
    )
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match=r"chromium is missing .*apt-get install chromium"):
        programs.require("chromium")


def test_tests_skip_for_a_missing_program_only_through_programs_require():
    """A test that skipped on its own would pass CI without running; programs.require fails
    there. (tests/support/postgres.py fails on CI too, with the server's own error.)"""
    allowed = {"tests/support/programs.py", "tests/support/postgres.py"}
    offenders = []
    for path in sorted(REPO.glob("tests/**/*.py")):
        rel = path.relative_to(REPO).as_posix()
        source = path.read_text(encoding="utf-8")
        if rel not in allowed and re.search(r"pytest\.(skip\(|importorskip|mark\.skip)", source):
            offenders.append(rel)
    assert offenders == []


def test_the_preflight_names_what_is_missing_and_stops_ci(tmp_path):
    """`make test`'s first step, as a process: every program on a line; CI stops at a gap."""
    env = {"PATH": "/nonexistent", "CI": "true", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.programs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    for program in programs.PROGRAMS:
        assert any(program.name in line for line in lines), program.name
    if programs.find_runuser() != "not needed (not root)":  # as root, runuser is off the PATH
        assert done.returncode == 1
        assert re.search(r"MISSING\s+runuser", done.stdout)
        assert "CI runs every test, so it stops here" in done.stdout
