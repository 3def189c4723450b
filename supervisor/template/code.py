"""A function's code as a directory on disk: the CodeUri directory itself, or a private copy pyrie unpacks.

- a directory (relative to the template) is used in place;
- a .zip (or .jar) archive is unpacked into a private directory, once per archive, keeping the files' Unix modes
  (an executable ``bootstrap`` stays executable) and symbolic links that stay inside the archive;
- inline code (``InlineCode``, ``Code.ZipFile``) is written to ``index.py`` or ``index.js`` in a private directory,
  as Lambda names it for Python and Node.js;
- code in S3 or a container image cannot be run from here: ``CodeRefused`` says what to do instead.

Every private directory is listed in ``Scratch.directories``; the caller removes them (``Template.close``).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from typing import Final

from supervisor.template.functions import CodeLocation

__all__ = ["CodeRefused", "Scratch", "code_directory"]

_INLINE_FILES: Final = {"python": "index.py", "nodejs": "index.js"}


class CodeRefused(Exception):
    """The function's code cannot be made a directory; the message says why and what to do."""


class Scratch:
    """The private directories made for code, each archive unpacked once."""

    def __init__(self) -> None:
        self.directories: list[str] = []
        self._unpacked: dict[str, str] = {}

    def new_directory(self, label: str) -> str:
        path = tempfile.mkdtemp(prefix=f"pyrie-{label}-")  # mode 0700: pyrie's own
        self.directories.append(path)
        return path

    def unpacked(self, archive: str, label: str) -> str:
        if archive not in self._unpacked:
            directory = self.new_directory(label)
            _unpack(archive, directory)
            self._unpacked[archive] = directory
        return self._unpacked[archive]

    def remove(self) -> None:
        for path in self.directories:
            shutil.rmtree(path, ignore_errors=True)
        self.directories.clear()


def code_directory(
    code: CodeLocation, runtime: str | None, logical_id: str, template_path: str, scratch: Scratch
) -> tuple[str, str]:
    """The code's directory and what to watch for changes to it (the directory, the archive or the template)."""
    if code.kind == "image":
        raise CodeRefused(
            f"is a container image ({code.value or 'PackageType: Image'}); pyrie runs code from local directories "
            "and .zip files, not images: run the image with pyrie as its emulator instead"
        )
    if code.kind == "remote":
        raise CodeRefused(
            f"has its code in S3 ({code.value}); point CodeUri at a local directory or .zip, or run `sam build` and "
            "give pyrie .aws-sam/build/template.yaml"
        )
    if code.kind == "inline":
        family = (runtime or "").rstrip("0123456789.x")
        filename = _INLINE_FILES.get(family)
        if filename is None:
            raise CodeRefused(f"has inline code, which Lambda takes for Python and Node.js only, not {runtime}")
        directory = scratch.new_directory(logical_id)
        with open(os.path.join(directory, filename), "w", encoding="utf-8") as file:
            file.write(code.value)
        return directory, template_path
    path = os.path.normpath(os.path.join(os.path.dirname(template_path), code.value))
    if os.path.isdir(path):
        return path, path
    if not os.path.exists(path):
        raise CodeRefused(f"has its code at {path}, which does not exist")
    if not zipfile.is_zipfile(path):
        raise CodeRefused(f"has its code at {path}, which is neither a directory nor a .zip archive")
    try:
        return scratch.unpacked(path, logical_id), path
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise CodeRefused(f"has its code in {path}, which cannot be unpacked: {exc}") from None


def _unpack(archive: str, directory: str) -> None:
    """Unpack ``archive`` into ``directory``, with the Unix modes and in-archive symbolic links it records."""
    root = os.path.realpath(directory)
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            target = zipped.extract(member, directory)  # names with .. or a leading / are made safe here
            mode = member.external_attr >> 16
            if not mode or member.create_system != 3:  # 3: made on Unix; others record no Unix mode
                continue
            if stat.S_ISLNK(mode):
                link = zipped.read(member).decode()
                if not os.path.realpath(os.path.join(os.path.dirname(target), link)).startswith(root + os.sep):
                    raise RuntimeError(f"the symbolic link {member.filename} points outside the archive")
                os.remove(target)
                os.symlink(link, target)
            elif not member.is_dir():
                os.chmod(target, stat.S_IMODE(mode))
