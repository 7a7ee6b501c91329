"""The command line as a user meets it: exit codes, one-sentence errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "corpus" / "seeds"
DATA = REPO.parent / "shared" / "data"


def review(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=300,
    )


def assert_one_sentence_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, message


def test_ingest_writes_jsonl_for_every_seed(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    result = review("ingest", *map(str, sorted(SEEDS.glob("*.txt"))), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 5
    assert {row["source_file"] for row in rows} == {p.name for p in SEEDS.glob("*.txt")}
    assert all(row["record_id"] and row["id"] for row in rows)


def test_ingest_mixed_real_formats(tmp_path: Path) -> None:
    files = [
        DATA / "exports/ris/asreview_ovid_psycinfo.ris",
        DATA / "exports/medline/biopython_pubmed_result2.txt",
        DATA / "exports/csv/litstudy_ieee.csv",
    ]
    out = tmp_path / "mixed.jsonl"
    result = review("ingest", *map(str, files), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["source_format"] for row in rows].count("ris") == 6
    assert len(rows) == 6 + 4 + 10


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ["does not exist", "check the path"]),
        (b"", ["is empty"]),
        (b"\x00\x01\x02binary\x00" * 50, ["binary", "export it as"]),
        (b"Title;Year\n", ["no title column"]),
    ],
)
def test_bad_input_is_one_sentence_and_nothing_is_written(
    tmp_path: Path, content: bytes | None, fragments: list[str]
) -> None:
    bad = tmp_path / "bad.csv"
    if content is not None:
        bad.write_bytes(content if content != b"Title;Year\n" else b"Name;Year\nfoo;2020\n")
    out = tmp_path / "out.jsonl"
    result = review("ingest", str(SEEDS / sorted(p.name for p in SEEDS.glob('*.txt'))[0]), str(bad), "--out", str(out))
    assert_one_sentence_error(result, str(bad), *fragments)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.jsonl.*"))


def test_truncated_ris_names_the_line(tmp_path: Path) -> None:
    ris = (DATA / "exports/ris/asreview_ovid_psycinfo.ris").read_text(encoding="utf-8")
    first_end = ris.index("ER  -")
    cut = ris[: ris.index("\n", first_end) + 1] + "\nTY  - JOUR\nAU  - Someone\n"
    bad = tmp_path / "cut.ris"
    bad.write_text(cut, encoding="utf-8")
    result = review("ingest", str(bad), "--out", str(tmp_path / "o.jsonl"))
    assert_one_sentence_error(result, "cut.ris", "line")


def test_cp1252_file_is_read_correctly(tmp_path: Path) -> None:
    out = tmp_path / "asysd.jsonl"
    source = DATA / "dedup-benchmarks/asysd-labelled-test-set/labelled_test_set.csv"
    result = review("ingest", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1845
    assert any("©" in row["abstract"] for row in rows)
    assert not any("\ufffd" in row["abstract"] for row in rows)


def test_init_then_status(tmp_path: Path) -> None:
    target = tmp_path / "new-review"
    result = review("init", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "review.yaml").is_file()
    status = review("status", "--workspace", str(target))
    assert status.returncode == 0, status.stderr
    assert "records in store" in status.stdout


def test_run_outside_a_workspace_explains_what_to_do(tmp_path: Path) -> None:
    result = review("run", "--workspace", str(tmp_path))
    assert_one_sentence_error(result, "no review.yaml", "review init")


def test_dedupe_command_on_two_exports_of_one_library(tmp_path: Path) -> None:
    out = tmp_path / "dedupe.csv"
    # The same Zotero library exported as RIS and as BibTeX: every record should find its twin.
    ris = DATA / "exports/ris/asysd_zotero_export.ris"
    bib = DATA / "exports/bibtex/asysd_zotero_export.bib"
    result = review("dedupe", str(ris), str(bib), "--out", str(out))
    assert result.returncode == 0, result.stderr
    import csv

    with open(out, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["id", "duplicate_group", "keep", "match_reason"]
    assert len(rows) == 2000
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["duplicate_group"], []).append(row)
    assert 990 <= len(groups) <= 1000
    twins = [members for members in groups.values() if {m["source_file"] for m in members} == {ris.name, bib.name}]
    assert len(twins) >= 990
    for members in groups.values():
        assert [m["keep"] for m in members].count("True") == 1
        assert len(members) == 1 or all(m["match_reason"] for m in members)


def test_code_command_writes_the_contract_columns(tmp_path: Path) -> None:
    out = tmp_path / "codes.csv"
    result = review("code", str(SEEDS / "002_aebbb2b735232ba2.txt"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    import csv

    with open(out, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "code", "category", "direction", "evidence", "method", "confidence"]
    assert {row["method"] for row in rows} == {"rule"}
    assert all(row["code"].startswith(row["category"] + ".") for row in rows)
    assert all(row["evidence"] for row in rows)


def test_codebook_check_lists_every_problem(tmp_path: Path) -> None:
    good = review("codebook", "check", str(REPO / "codebook" / "school_to_school.yaml"))
    assert good.returncode == 0 and "OK" in good.stdout
    bad = review("codebook", "check", str(REPO / "tests/data/coding/bad_codebook.yaml"))
    assert bad.returncode == 2
    assert "patterns -> 2: unknown token attribute 'LEMA'" in bad.stderr
    assert "problem(s)" in bad.stderr


def test_run_with_a_bad_file_is_one_sentence_without_traceback(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    assert review("init", str(target)).returncode == 0
    (target / "corpus" / "files" / "empty.ris").write_bytes(b"")
    result = review("run", "--workspace", str(target))
    assert_one_sentence_error(result, "empty.ris: the file is empty", "remove the file")
    assert not (target / "outputs" / "records.csv").exists()
