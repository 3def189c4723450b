"""A small Dockerfile reader for the tests: instructions with their arguments, as BuildKit splits them.

Enough for the files in deploy/: comment lines (parser directives included) are skipped, a trailing backslash joins
a line with the next, and arguments are either the exec form (a JSON array) or shell words. Options of an
instruction (``--from=...``, ``--chown=...``) are kept apart from its words.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, COPY, RUN ...
    text: str  # the arguments as written, continuation lines joined
    line: int  # where it starts, 1-based
    stage: str  # the name (or index) of the build stage it belongs to

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        if not self.text.startswith("["):
            return None
        value = json.loads(self.text)
        assert isinstance(value, list) and all(isinstance(word, str) for word in value), self
        return value

    @property
    def options(self) -> dict[str, str]:
        return dict(word[2:].partition("=")[::2] for word in self._split() if word.startswith("--"))

    @property
    def words(self) -> list[str]:
        exec_form = self.exec_form
        if exec_form is not None:
            return exec_form
        return [word for word in self._split() if not word.startswith("--")]

    def _split(self) -> list[str]:
        return shlex.split(self.text, comments=False)


def read(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    stage = "0"
    stages = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, text = " ".join(part for part in pending if part).partition(" ")
        pending = []
        keyword = keyword.upper()
        if keyword == "FROM":
            words = shlex.split(text)
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(stages)
            stages += 1
        instructions.append(Instruction(keyword, text.strip(), start, stage))
    assert not pending, f"{path} ends inside a continued instruction"
    return instructions


def copy_sources(instruction: Instruction) -> list[str]:
    """The sources of a COPY or ADD (every word but the destination)."""
    assert instruction.keyword in ("COPY", "ADD"), instruction
    words = instruction.words
    assert len(words) >= 2, instruction
    return words[:-1]
