"""An input file opened safely: existence, emptiness, binary content and encoding checked once."""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.errors import InputFileError

HEAD_BYTES = 64 * 1024
_CHUNK = 1 << 20
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class SourceFile:
    """A readable text file with its detected encoding, content hash and decoded head."""

    path: Path
    encoding: str
    sha256: str
    size: int
    head: str  # the first HEAD_BYTES decoded, BOM removed, line ends as in the file

    @property
    def name(self) -> str:
        return self.path.name

    def open_lines(self) -> TextIO:
        """Universal newlines (\\r, \\r\\n and \\n all end a line): for line-based formats."""
        return open(self.path, encoding=self.encoding, errors="strict", newline=None)

    def open_raw(self) -> TextIO:
        """Line ends untouched: for the csv module, which handles quoted newlines itself."""
        return open(self.path, encoding=self.encoding, errors="strict", newline="")

    def error(self, problem: str, fix: str, **where: int | str | None) -> InputFileError:
        return InputFileError(self.path, problem, fix, **where)  # type: ignore[arg-type]


def open_source(path: str | Path) -> SourceFile:
    """Check a path and detect its encoding, streaming so that a large file never sits in memory."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "the file does not exist", "check the path and the current directory")
    if path.is_dir():
        raise InputFileError(path, "this is a folder, not a file", "name the files inside it instead")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(path, "the file is empty", "export the records again or remove the file")
    with open(path, "rb") as handle:
        first = handle.read(HEAD_BYTES)
    encoding = _bom_encoding(first)
    if encoding is None and b"\x00" in first:
        raise InputFileError(
            path,
            "the file is binary, not a text export",
            "export it as RIS, BibTeX, CSV, MEDLINE, EndNote XML, JSON or plain text",
        )
    digest, valid_utf8 = _hash_and_check_utf8(path)
    if encoding is None:
        encoding = "utf-8" if valid_utf8 else _legacy_encoding(path)
    head = first.decode(encoding, errors="ignore").lstrip("\ufeff")
    if not head.strip():
        raise InputFileError(path, "the file holds only white space", "export the records again or remove the file")
    return SourceFile(path=path, encoding=encoding, sha256=digest, size=size, head=head)


def _bom_encoding(first: bytes) -> str | None:
    for bom, name in _BOMS:
        if first.startswith(bom):
            return name
    return None


def _hash_and_check_utf8(path: Path) -> tuple[str, bool]:
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid = True
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if valid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    return digest.hexdigest(), valid


def _legacy_encoding(path: Path) -> str:
    """Not UTF-8: Windows-1252 (what Excel and EndNote on Windows write), else Latin-1."""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                chunk.decode("cp1252")
            except UnicodeDecodeError:
                return "latin-1"
    return "cp1252"
