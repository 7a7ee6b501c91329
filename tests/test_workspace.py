from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError, ReviewError
from pipeline.workspace import init_workspace, load_workspace

REPO = Path(__file__).resolve().parents[1]


def test_repository_root_is_the_default_workspace() -> None:
    ws = load_workspace(REPO)
    assert ws.config.name == "School-to-school collaboration"
    names = [p.name for p in ws.input_files()]
    assert len([n for n in names if n.endswith(".txt") and n[:3].isdigit()]) == 5
    assert ws.codebook_path.is_file()
    assert ws.store_url == f"sqlite:///{REPO / 'corpus' / 'review.db'}"


def test_init_creates_a_complete_workspace(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "new")
    for sub in ("corpus/files", "outputs", "codebook"):
        assert (ws.root / sub).is_dir()
    assert (ws.root / "review.yaml").is_file()
    assert ws.codebook_path.parent == (ws.root / "codebook").resolve()
    assert ws.codebook_path.read_bytes() == (REPO / "codebook" / "school_to_school.yaml").read_bytes()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws")
    with pytest.raises(ReviewError, match="already exists"):
        init_workspace(tmp_path / "ws")


def test_every_config_problem_is_listed_with_its_location(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    (ws.root / "review.yaml").write_text(
        "name: ''\ninputs: [corpus/files/*]\nstroe: x\nsources:\n  openalx: {query: q}\n  eric: {query: q, max_records: 0}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_workspace(ws.root)
    problems = info.value.problems
    assert any(p.startswith("name:") for p in problems)
    assert any(p.startswith("stroe: unknown key") for p in problems)
    assert "sources -> openalx: unknown key (check the spelling; see README for the keys review.yaml accepts)" in problems
    assert any(p.startswith("sources -> eric -> max_records: Input should be greater than 0") for p in problems)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    (ws.root / "review.yaml").write_text("name: x\ninputs: [a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 3"):
        load_workspace(ws.root)


def test_missing_review_yaml_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="review init"):
        load_workspace(tmp_path)


def test_missing_codebook_is_reported(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    text = (ws.root / "review.yaml").read_text(encoding="utf-8")
    (ws.root / "review.yaml").write_text(text.replace("codebook: codebook/", "codebook: nowhere/"), encoding="utf-8")
    with pytest.raises(ConfigError, match="codebook: file 'nowhere/"):
        load_workspace(ws.root)


def test_globs_match_each_file_once(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    (ws.root / "corpus/files/a.ris").write_text("TY  - JOUR\nER  - \n", encoding="utf-8")
    (ws.root / "corpus/files/.hidden").write_text("x", encoding="utf-8")
    text = (ws.root / "review.yaml").read_text(encoding="utf-8")
    (ws.root / "review.yaml").write_text(text.replace("  - corpus/files/**/*", "  - corpus/files/**/*\n  - corpus/files/a.ris"), encoding="utf-8")
    files = load_workspace(ws.root).input_files()
    assert [f.name for f in files] == ["a.ris"]
