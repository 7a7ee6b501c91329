"""The few tests that run real Prefect flows: they share one prefect_test_harness (it costs ~15 s)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import os

    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_review_flow_runs_on_the_seeds(prefect_harness: None, workspace: Path) -> None:
    from flows.review import review

    counts = review(workspace=str(workspace))
    assert counts["ingest"]["files_new"] == 5
    records_csv = workspace / "outputs" / "records.csv"
    with open(records_csv, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == counts["ingest"]["records_new"]
    assert "flags" in rows[0] and any("truncated" in row["flags"] for row in rows)
    outputs = workspace / "outputs"
    for name in ("evidence_matrix_wide.csv", "evidence_matrix_long.csv", "evidence_matrix.xlsx", "evidence_map.html",
                 "prisma_flow.svg", "prisma_flow.png", "prisma_counts.json", "duplicates_sheet.csv"):
        assert (outputs / name).stat().st_size > 0, name
    assert counts["dedupe"]["studies"] < counts["dedupe"]["records"]  # seed 001's truncated repeats merge
    assert counts["code"]["assignments"] > 0
    prisma = json.loads((outputs / "prisma_counts.json").read_text(encoding="utf-8"))
    assert prisma["identified"] == counts["ingest"]["records_new"]
    matrix_bytes = {p.name: p.read_bytes() for p in outputs.iterdir() if p.suffix in {".csv", ".xlsx", ".html", ".svg"}}
    summary = json.loads((workspace / "outputs" / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["counts"] == counts
    assert summary["store"]["records"] == len(rows)

    again = review(workspace=str(workspace))
    assert again["ingest"] == {"files_new": 0, "files_already_ingested": 5, "records_new": 0}
    assert again["code"]["assignments"] == counts["code"]["assignments"]
    assert again["code"]["rules_ran_on"] == 0  # unchanged studies reuse their cached codes
    assert again["changes"] == {"records_new": 0, "studies_new": 0, "codes_new": 0, "codes_changed": 0, "codes_dropped": 0}
    rerun_bytes = {p.name: p.read_bytes() for p in outputs.iterdir() if p.suffix in {".csv", ".xlsx", ".html", ".svg"}}
    assert rerun_bytes == matrix_bytes  # same inputs, same codebook -> byte-identical outputs
    with open(records_csv, encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_reviewer_decisions_survive_a_rerun(prefect_harness: None, workspace: Path, tmp_path: Path) -> None:
    """The whole reviewer loop: run, export the sheet, decide, import, run again: the decisions hold."""
    from flows.review import review
    from pipeline.commands import export_review_sheet, import_review_sheet, load_state

    review(workspace=str(workspace))
    sheet = tmp_path / "sheet.csv"
    assert export_review_sheet(workspace, sheet) > 1
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rejected, accepted = rows[0], rows[1]
    rejected["decision"], accepted["decision"] = "reject", "accept"
    with open(sheet, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = import_review_sheet(workspace, sheet, "ana")
    assert result["counts"]["reject"] == 1 and result["counts"]["accept"] == 1

    review(workspace=str(workspace))  # the machine runs again
    final = load_state(workspace).final.set_index(["study_id", "code"])
    assert (rejected["study_id"], rejected["code"]) not in final.index
    assert final.loc[(accepted["study_id"], accepted["code"]), "decided_by"] == "ana"
    with open(workspace / "outputs" / "evidence_matrix_long.csv", encoding="utf-8-sig", newline="") as handle:
        long_rows = list(csv.DictReader(handle))
    assert any(row.get("decided_by") == "ana" for row in long_rows)


def _workspace_with_exports(root: Path, workspace: Path, runner: str) -> Path:
    """The seeds plus two real exports, in batches of 4 so the coding is mapped over many batches."""
    import shutil

    target = root / runner
    shutil.copytree(workspace, target)
    exports = target / "corpus" / "files" / "exports"
    exports.mkdir()
    for name in ("asreview_ris_issue_992_rayyan.txt", "asreview_embase.ris"):
        shutil.copyfile(Path(__file__).parent / "data" / "ingest_tagged" / name, exports / name)
    config = target / "review.yaml"
    extra = "\nbatch_size: 4\n" + ("runner:\n  kind: dask\n  workers: 2\n" if runner == "dask" else "")
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return target


def test_dask_local_cluster_gives_the_same_results(prefect_harness: None, workspace: Path, tmp_path: Path) -> None:
    """Issue 9: the same flow on Prefect's default runner and on a Dask LocalCluster: identical outputs."""
    from flows.review import review

    outputs = {}
    for runner in ("default", "dask"):
        target = _workspace_with_exports(tmp_path, workspace, runner)
        counts = review(workspace=str(target))
        assert counts["code"]["rules_ran_on"] > 8  # more than two batches of 4 were mapped
        assert counts["run"]["runner"].startswith("a local Dask cluster" if runner == "dask" else "Prefect's default")
        outputs[runner] = {
            p.name: p.read_bytes()
            for p in (target / "outputs").iterdir()
            if p.is_file() and p.name not in {"run_summary.json", "changes.json"}
        }
    assert sorted(outputs["dask"]) == sorted(outputs["default"])
    differing = [name for name in outputs["default"] if outputs["default"][name] != outputs["dask"][name]]
    assert differing == []
