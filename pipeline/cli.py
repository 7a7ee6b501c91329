"""The `review` command line: each command a thin wrapper over the function the flow calls."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.errors import ReviewError

app = typer.Typer(
    name="review",
    help="Living, configurative literature reviews: ingest, clean, deduplicate, code and synthesise.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()

WorkspaceOption = Annotated[
    Path, typer.Option("--workspace", "-w", help="The workspace folder (holds review.yaml).", show_default=False)
]


def _offline_environment(workspace: Path) -> None:
    """Defaults that keep every run offline and Prefect's state inside the workspace."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("PREFECT_HOME", str((workspace / ".prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")


class _UserErrorsWithoutTraceback(logging.Filter):
    """Prefect logs every failed task with its traceback; for a user mistake one sentence is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ReviewError):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_user_errors_in_prefect_logs() -> None:
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.task_engine", "prefect.flow_engine"):
        logging.getLogger(name).addFilter(_UserErrorsWithoutTraceback())


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace (created if missing).")],
    codebook: Annotated[Path | None, typer.Option(help="Start from this codebook instead of the bundled one.")] = None,
) -> None:
    """Create a new review workspace: review.yaml, corpus/, outputs/, codebook/."""
    from pipeline.workspace import init_workspace

    ws = init_workspace(directory, codebook)
    out.print(f"Created workspace {ws.root} (codebook: {ws.config.codebook}).")
    out.print(f"Next: put export files into {ws.root / 'corpus' / 'files'} and run `review run --workspace {directory}`.")


@app.command()
def run(workspace: WorkspaceOption = Path(".")) -> None:
    """Run the whole review flow on the workspace (the main job)."""
    from pipeline.workspace import load_workspace

    load_workspace(workspace)  # validate before paying for Prefect's start-up
    _offline_environment(workspace)
    logging.getLogger("pipeline").setLevel(logging.INFO)
    from flows.review import run_review

    _quiet_user_errors_in_prefect_logs()

    counts = run_review(workspace)
    _print_counts(counts)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Export files in any supported format.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the records (JSON Lines).")],
) -> None:
    """Read export files, normalise and clean the records, write them as JSON Lines."""
    from pipeline.commands import ingest_to_jsonl

    with _progress() as progress:
        task = progress.add_task("ingesting", total=len(files))
        counts = ingest_to_jsonl(files, out_path, on_file_done=lambda: progress.advance(task))
    table = Table("file", "format", "records", "with abstract")
    for row in counts:
        table.add_row(row["file"], row["format"], str(row["records"]), str(row["with_abstract"]))
    out.print(table)
    out.print(f"Wrote {sum(r['records'] for r in counts)} records to {out_path}.")


@app.command()
def dedupe(
    files: Annotated[list[Path], typer.Argument(help="Export files in any supported format.")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV: id, duplicate_group, keep, match_reason.")],
) -> None:
    """Find duplicate records across files; every record with its group and why it matched."""
    from pipeline.commands import dedupe_files

    counts = dedupe_files(files, out_path)
    out.print(
        f"{counts['records']} records -> {counts['studies']} studies "
        f"({counts['duplicates_removed']} duplicates); wrote {out_path}."
    )


@app.command()
def code(
    file: Annotated[Path, typer.Argument(help="An export file (any supported format).")],
    out_path: Annotated[Path, typer.Option("--out", help="CSV: one row per (id, code).")],
    codebook: Annotated[Path | None, typer.Option(help="Codebook YAML (default: the bundled one).")] = None,
) -> None:
    """Code every record of a file against the codebook: id, code, category, direction, evidence, method, confidence."""
    from pipeline.commands import code_file
    from pipeline.workspace import BUNDLED_CODEBOOK

    counts = code_file(file, out_path, codebook or BUNDLED_CODEBOOK)
    out.print(f"{counts['codes']} codes for {counts['records_coded']} of {counts['records']} records; wrote {out_path}.")


@app.command()
def export(
    workspace: WorkspaceOption = Path("."),
    formats: Annotated[
        list[str] | None, typer.Option("--format", help="csv, xlsx, html or prisma (repeatable; default: all).")
    ] = None,
) -> None:
    """Write the evidence matrix and reports into outputs/ from the store."""
    from pipeline.commands import export_workspace

    written = export_workspace(workspace, formats or ["csv", "xlsx", "html", "prisma"])
    for path in written:
        out.print(str(path))


@app.command()
def harvest(
    source: Annotated[str, typer.Argument(help="openalex | crossref | semanticscholar | eric | pubmed")],
    query: Annotated[str, typer.Option("--query", help="The search, in the source's own syntax.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the records (JSON Lines).")],
    base_url: Annotated[str | None, typer.Option("--base-url", help="API root (a mirror, a proxy, a test server).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only what is new since this date (YYYY-MM-DD).")] = None,
    max_records: Annotated[int | None, typer.Option("--max", help="Stop after this many records.")] = None,
    raw_dir: Annotated[Path | None, typer.Option("--raw-dir", help="Keep the raw payloads here.")] = None,
) -> None:
    """Harvest one source into JSON Lines (polite, resumable; keys come from the environment)."""
    from pipeline.commands import harvest_to_jsonl

    counts = harvest_to_jsonl(source, query, out_path, base_url=base_url, since=since, max_records=max_records, raw_dir=raw_dir)
    out.print(f"{counts['records']} records from {source} in {counts['pages']} page(s); wrote {out_path}.")


@app.command()
def schedule(
    workspace: WorkspaceOption = Path("."),
    cron: Annotated[str, typer.Option(help="When to run (cron, UTC).")] = "0 6 * * 1",
    serve: Annotated[bool, typer.Option("--serve", help="Serve the schedule in this process (blocks).")] = False,
    work_pool: Annotated[str | None, typer.Option(help="Register for workers of this work pool instead.")] = None,
) -> None:
    """Register the living-review deployment with a cron schedule on the Prefect server (PREFECT_API_URL)."""
    from pipeline.workspace import load_workspace

    load_workspace(workspace)
    _offline_environment(workspace)
    from flows.schedule import create_deployment, serve_review

    if serve:
        serve_review(str(workspace.resolve()), cron)
        return
    deployment_id = create_deployment(str(workspace.resolve()), cron, work_pool=work_pool)
    out.print(f"Deployment review/weekly-review ({deployment_id}) scheduled with cron {cron!r}.")


sheet_app = typer.Typer(help="Reviewer corrections through spreadsheets (CSV or XLSX).", no_args_is_help=True)
app.add_typer(sheet_app, name="sheet")


@sheet_app.command("export")
def sheet_export(
    out_path: Annotated[Path, typer.Argument(help="The sheet to write: .csv or .xlsx.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """One row per machine code with its quote, and empty decision columns to fill in."""
    from pipeline.commands import export_review_sheet

    rows = export_review_sheet(workspace, out_path)
    out.print(f"Wrote {rows} codes to {out_path}; fill in decision (accept, reject, change_code, change_direction, add).")


@sheet_app.command("import")
def sheet_import(
    sheet: Annotated[Path, typer.Argument(help="A filled-in review sheet (.csv or .xlsx).")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who made these decisions.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Record a reviewer's decisions (all or nothing) and refresh the matrix in outputs/."""
    from pipeline.commands import import_review_sheet

    result = import_review_sheet(workspace, sheet, reviewer)
    decided = ", ".join(f"{n} {d}" for d, n in sorted(result["counts"].items()) if n) or "no new decisions"
    out.print(f"Imported {sheet} for {reviewer}: {decided} ({result['unchanged']} unchanged); outputs refreshed.")


@sheet_app.command("reconcile")
def sheet_reconcile(
    sheet_a: Annotated[Path, typer.Argument(help="The first reviewer's sheet.")],
    sheet_b: Annotated[Path, typer.Argument(help="The second reviewer's sheet.")],
    out_path: Annotated[Path, typer.Option("--out", help="The reconciliation sheet (.csv or .xlsx).")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """List where two reviewers disagree, as a sheet to settle and import like any other."""
    from pipeline.commands import reconcile_sheets

    conflicts = reconcile_sheets(workspace, sheet_a, sheet_b, out_path)
    out.print(f"{conflicts} conflict(s) written to {out_path}.")


duplicates_app = typer.Typer(help="Reviewer control over deduplication.", no_args_is_help=True)
app.add_typer(duplicates_app, name="duplicates")


@duplicates_app.command("import")
def duplicates_import(
    sheet: Annotated[Path, typer.Argument(help="outputs/duplicates_sheet.csv with `decision` filled: same / different.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who made these decisions.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Record split (different) and join (same) decisions; they win over the machine on every later run."""
    from pipeline.commands import import_duplicates_sheet

    added = import_duplicates_sheet(workspace, sheet, reviewer)
    out.print(f"Recorded {added} new duplicate decision(s) by {reviewer}; `review run` applies them.")


models_app = typer.Typer(help="Offline embedding models for the topic models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("distill")
def models_distill() -> None:
    """Distil the fast model2vec model from the packaged MiniLM, once, into the cache (no download)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pipeline.topics import distill_model2vec

    out.print(f"model2vec model ready at {distill_model2vec()}")


codebook_app = typer.Typer(help="Check and inspect codebooks.", no_args_is_help=True)
app.add_typer(codebook_app, name="codebook")


@codebook_app.command("check")
def codebook_check(path: Annotated[Path, typer.Argument(help="A YAML codebook.")]) -> None:
    """Validate a codebook and list every problem with its location."""
    from pipeline.commands import check_codebook_file

    problems = check_codebook_file(path)
    if problems:
        for problem in problems:
            console.print(f"{path}: {problem}", highlight=False, soft_wrap=True)
        console.print(f"[bold red]{len(problems)} problem(s)[/]; fix them and run the check again.")
        raise typer.Exit(2)
    out.print(f"{path}: OK")


@app.command()
def status(workspace: WorkspaceOption = Path(".")) -> None:
    """PRISMA-style counts, last runs, what changed."""
    from pipeline.commands import workspace_status

    report = workspace_status(workspace)
    table = Table("count", "value", title=f"Review: {report['name']}")
    for key, value in report["counts"].items():
        table.add_row(key, str(value))
    out.print(table)
    for line in report["agreement"]:
        out.print(line)
    runs = Table("run", "finished", "version", "new records", "studies", "assignments", title="Last runs")
    for run_row in report["runs"][-5:]:
        counts = run_row["counts"]
        runs.add_row(
            run_row["run_id"][:8],
            run_row["finished_at"][:19].replace("T", " "),
            run_row["package_version"],
            str(counts.get("ingest", {}).get("records_new", "")),
            str(counts.get("dedupe", {}).get("studies", "")),
            str(counts.get("code", {}).get("assignments", "")),
        )
    out.print(runs)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _print_counts(counts: dict[str, dict[str, int]]) -> None:
    table = Table("stage", "count", "value", title="Run")
    for stage, values in counts.items():
        for key, value in values.items():
            table.add_row(stage, key, str(value))
    out.print(table)


def main() -> None:
    """Entry point: user mistakes become one sentence and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ReviewError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; nothing was committed to the store.")
        sys.exit(130)


if __name__ == "__main__":
    main()
