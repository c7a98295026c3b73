"""Every fenced code block of README.md runs as written.

Each block is found by its fence and run by its language tag:
- `python`: each block alone, in a fresh namespace, so every block carries its own imports and data, as a
  reader who copies one block needs. The blocks run in this process, sharing the compiled kernels, and a
  traceback points at the README's own line numbers.
- `yaml`: a study. It is written to a file and loaded with `lowbit.study.load_study`, beside a small .npy for
  each `kind: npy` workload it names (the reader's own data, which the README cannot ship).
- `console`: a `$ lowbit ...` line runs with this environment's `lowbit` entry point in a temporary folder,
  and its output must equal the lines under it.
- `sh` / `bash`: each command. A `lowbit ...` command runs in a temporary folder that links `studies/`, so
  it writes its results there. In a block marked as skipped, `lowbit SUB ...` only has to show
  `lowbit SUB --help`, and `make TARGET` has to name a target of the Makefile.
- `text`: output, not run.
A block of any other tag, or of none, fails: tag it so that it is checked.

A block is skipped only where the line before it says so, with the reason:
`<!-- readme-test: skip (starts a server) -->`. Skipped today: "The two commands" (`make run` serves the
dashboard until stopped, `make test` runs the whole suite). The torch block skips where torch is missing,
and the MiniLM block where the `models` extra is, except under CI=true, where they fail (as tests/torch and
tests/models do).

Time budget: about 30 s on 2 cores with warm Numba caches; most of it is the first calls' kernel compiles,
AF4's codebook and MiniLM's forward passes. Keep README examples small enough for that: make an example
smaller rather than skip it here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LOWBIT = Path(sys.executable).parent / "lowbit"
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = re.compile(r"^<!-- readme-test: skip \((.+)\) -->$")
TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    """One fenced block: its tag, the README line of its first code line (1-based), its text, and the
    reason of a skip marker before it (None: not skipped)."""

    lang: str
    line: int
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.lang or 'untagged'}-L{self.line}"


def _skip_reason(lines: list[str], fence: int) -> str | None:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    m = SKIP.match(lines[before].strip()) if before >= 0 else None
    return m.group(1) if m else None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md:{i + 1}: a code fence that is never closed"
        blocks.append(Block(m.group(1), i + 2, "\n".join(lines[i + 1 : end]), _skip_reason(lines, i)))
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _skip_or_fail_in_ci(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, and {why}", pytrace=False)
    pytest.skip(why)


def _check_extras(src: str) -> None:
    """Skip a block whose optional extra is missing (fail under CI=true, where .ci/run installs it)."""
    if re.search(r"^\s*(import|from) (torch|lowbit\.torch)\b", src, re.M):
        try:
            import torch  # noqa: F401
        except (ImportError, OSError) as err:
            _skip_or_fail_in_ci(f"torch is missing ({err}); install lowbit[torch]")
    if "load_minilm" in src:
        from lowbit.lazy import minilm_package

        try:
            minilm_package()
        except ImportError as err:
            _skip_or_fail_in_ci(f"the models extra is missing ({err})")


def _lowbit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    assert LOWBIT.exists(), f"no lowbit entry point beside {sys.executable}: pip install -e ."
    return subprocess.run([str(LOWBIT), *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def _commands(text: str) -> list[list[str]]:
    """The command lines of a shell block, comments dropped and backslash continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def run_python(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_extras(block.text)
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands here
    code = compile("\n" * (block.line - 1) + block.text, str(README), "exec")
    exec(code, {"__name__": "__readme__"})


def run_yaml(block: Block, tmp_path: Path) -> None:
    from lowbit.study import load_study

    data = yaml.safe_load(block.text)
    for w in data.get("workloads", []):
        if isinstance(w, dict) and w.get("kind") == "npy":
            np.save(tmp_path / w["path"], np.ones((16, 64), np.float32))
    study_file = tmp_path / "readme_study.yaml"
    study_file.write_text(block.text, encoding="utf-8")
    load_study(study_file)


def run_console(block: Block, tmp_path: Path) -> None:
    parts = re.split(r"^\$ ", block.text, flags=re.M)
    assert not parts[0].strip(), f"README.md:{block.line}: a console block starts with `$ COMMAND`"
    for part in parts[1:]:
        command, _, expected = part.partition("\n")
        words = shlex.split(command)
        assert words[0] == "lowbit", f"README.md:{block.line}: console blocks run lowbit only, got {command!r}"
        done = _lowbit(words[1:], tmp_path)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}: {done.stderr}"
        got = [line.rstrip() for line in done.stdout.rstrip().splitlines()]
        assert got == [line.rstrip() for line in expected.rstrip().splitlines()], f"`{command}` printed:\n{done.stdout}"


def run_shell(block: Block, tmp_path: Path) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (tmp_path / "studies").symlink_to(ROOT / "studies")  # the README's commands name studies/ from the root
    for words in _commands(block.text):
        prog, args = words[0], words[1:]
        if prog == "lowbit" and block.skip is None:
            done = _lowbit(args, tmp_path)
        elif prog == "lowbit":
            done = _lowbit([args[0], "--help"] if args else ["--help"], tmp_path)
        elif prog == "make" and block.skip is not None:
            missing = [t for t in args if not re.search(rf"^{re.escape(t)}:", makefile, re.M)]
            assert not missing, f"README.md:{block.line}: the Makefile has no target {missing}"
            continue
        else:
            pytest.fail(f"README.md:{block.line}: `{' '.join(words)}` is not run by this test: mark the block "
                        "with <!-- readme-test: skip (REASON) --> or teach run_shell about it")  # fmt: skip
        assert done.returncode == 0, f"`{' '.join(words)}` exited {done.returncode}: {done.stderr}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.lang in ("sh", "bash"):  # a skipped shell block is still checked for what it names
        run_shell(block, tmp_path)
    if block.skip is not None:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    if block.lang in ("sh", "bash", "text"):
        return
    if block.lang == "python":
        run_python(block, tmp_path, monkeypatch)
    elif block.lang == "yaml":
        run_yaml(block, tmp_path)
    elif block.lang == "console":
        run_console(block, tmp_path)
    else:
        pytest.fail(f"README.md:{block.line}: a block tagged {block.lang or '(nothing)'!r}; tag it python, yaml, "
                    "console, sh or text, so that this test runs or knowingly skips it")  # fmt: skip


def test_blocks_are_found() -> None:
    """The extractor sees the README's blocks (a broken fence pattern would make every test vacuous)."""
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 8
    assert {"sh", "yaml", "console"} <= set(langs)


def test_extractor_on_a_known_text() -> None:
    text = "intro\n\n<!-- readme-test: skip (starts a server) -->\n```sh\nmake run\n```\n\n```python\nx = 1\n```\n"
    assert readme_blocks(text) == [Block("sh", 5, "make run", "starts a server"), Block("python", 9, "x = 1", None)]
    assert _commands("make run   # serves\nlowbit cost a \\\n  b\n") == [["make", "run"], ["lowbit", "cost", "a", "b"]]
