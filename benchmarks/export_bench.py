"""Seconds and peak memory of the studies frame, the matrix and every export, on synthetic reviews of 100k and 1M
studies (issue 9: exports and synthesis in bounded memory at 1M studies).

    python benchmarks/export_bench.py                         100k and 1M studies, every stage
    python benchmarks/export_bench.py --sizes 100000 --stages matrix csv
    python benchmarks/export_bench.py --pipeline-root /tmp/old_checkout   the same figures for another checkout
    python benchmarks/export_bench.py --real-facets           build_studies with the real facet regexes (slow)

The synthetic review is made of real text: titles, abstracts, authors and venues from the export files in
../shared/data/exports, evidence sentences from those abstracts, the seed documents and the hand-coded validation set
(tests/data/coding/gold.jsonl), ~180 characters each. Each study has 0-7 codes (3 on average) of the bundled
codebook, benefits the most frequent category (~40%, so that at 1M studies its sheet passes Excel's 1,048,576 rows),
facets (countries, design, lens) drawn from skewed distributions, 1.25 records per study for build_studies.
The inputs are made once per size (fixed seeds) and kept as Parquet files in --work.

Every stage runs in its own process, which loads its inputs, builds what the stage needs but does not time (the
matrix, for the writers), resets its memory high-water mark (/proc/self/clear_refs) and then runs the stage:
`seconds` is the stage's wall time, `rss_start_mb` the process's resident memory when the stage started (inputs
included), `peak_rss_mb` its high-water mark during the stage (Linux VmHWM). A stage that passes --mem-cap-gb is
killed and reported as such (the machine has other work; nothing here may take all its memory).

Stages: studies (build_studies; the facet regexes are replaced by a table lookup unless --real-facets, their cost per
study is printed separately by `facets`), matrix (build_matrix), csv, xlsx, html, prisma (each writer on a built
matrix), export (stages.export_stage: the matrix, every file and the duplicates sheet, as the flow runs it).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CODEBOOK = ROOT / "codebook" / "school_to_school.yaml"
STAGES = ("facets", "studies", "matrix", "csv", "xlsx", "html", "prisma", "export")
RECORDS_PER_STUDY = 1.25
CATEGORY_WEIGHTS = {"reasons": 0.15, "facilitators": 0.27, "barriers": 0.18, "benefits": 0.40}
METHOD_WEIGHTS = {"rule": 0.80, "topic": 0.18, "reviewer": 0.02}
DIRECTION_WEIGHTS = {"supporting": 0.7, "contrasting": 0.2, "mixed": 0.1}
DESIGN_WEIGHTS = {"other": 0.35, "qualitative": 0.2, "case_study": 0.15, "quantitative": 0.12, "review": 0.08,
                  "mixed_methods": 0.06, "conceptual": 0.04}
MB = 1024 * 1024
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_RIS_TAG = re.compile(r"^(TI|T1|AB|N2|AU|A1|JO|T2|JF)  - (.*)$", re.MULTILINE)


# ---------------------------------------------------------------- real text


def text_pools() -> dict[str, list[str]]:
    """Titles, abstracts, authors, venues and evidence sentences from the real data beside the repository."""
    import pandas as pd

    pools: dict[str, list[str]] = {"title": [], "abstract": [], "authors": [], "venue": []}
    columns = {"title": ("Title", "Document Title", "Item Title"), "abstract": ("Abstract", "Abstract Note"),
               "authors": ("Authors", "Author"), "venue": ("Source title", "Publication Title", "Source")}
    for path in sorted((SHARED / "data" / "exports" / "csv").glob("*.csv")):
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, on_bad_lines="skip")
        for pool, names in columns.items():
            for name in names:
                if name in frame.columns:
                    pools[pool].extend(frame[name].dropna().tolist())
    ris_pool = {"TI": "title", "T1": "title", "AB": "abstract", "N2": "abstract", "AU": "authors", "A1": "authors",
                "JO": "venue", "T2": "venue", "JF": "venue"}
    for path in sorted((SHARED / "data" / "exports" / "ris").glob("*")):
        for tag, value in _RIS_TAG.findall(path.read_text(encoding="utf-8-sig", errors="replace")):
            pools[ris_pool[tag]].append(value)
    gold = (ROOT / "tests" / "data" / "coding" / "gold.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in gold.splitlines() if line.strip()]
    texts += [p.read_text(encoding="utf-8") for p in sorted((SHARED / "seeds").glob("*.txt"))]
    pools = {name: _distinct(values) for name, values in pools.items()}
    pools["abstract"] = [a for a in pools["abstract"] if len(a) >= 400 and "No abstract available" not in a]
    sentences = (" ".join(s.split()) for text in texts + pools["abstract"] for s in _SENTENCE_END.split(text))
    pools["sentence"] = _distinct(s for s in sentences if 60 <= len(s) <= 400)
    return pools


def _distinct(values: Any) -> list[str]:
    return list(dict.fromkeys(" ".join(str(v).split()) for v in values if str(v).strip()))


# ---------------------------------------------------------------- synthetic review


def _pick(rng: Any, pool: list[str], n: int) -> Any:
    import numpy as np

    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)]


def _weighted(rng: Any, weights: dict[str, float], n: int) -> Any:
    import numpy as np

    names = np.asarray(list(weights), dtype=object)
    p = np.asarray(list(weights.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def _hex_ids(rng: Any, n: int, prefix: str) -> Any:
    """n distinct ids like 'r3f9c0a1b2c3d4e5f' (a prefix and 15 hex digits, as the pipeline's ids look): an odd
    multiplier is a bijection modulo 2**60, so distinct positions give distinct ids."""
    import numpy as np

    offset = np.uint64(rng.integers(0, 2**40))
    with np.errstate(over="ignore"):
        values = (np.arange(n, dtype=np.uint64) + offset) * np.uint64(0x9E3779B97F4A7C15) & np.uint64(2**60 - 1)
    return np.char.add(prefix, np.char.zfill(np.char.mod("%x", values), 15)).astype(object)


def _facet_lists(rng: Any, names: list[str], n: int, p_empty: float, zipf: float) -> Any:
    """'England; Wales'-style lists: empty with p_empty, else 1-2 names drawn with Zipf-like frequencies."""
    import numpy as np

    ranks = np.arange(1, len(names) + 1, dtype=float) ** -zipf
    first = rng.choice(len(names), size=n, p=ranks / ranks.sum())
    second = rng.choice(len(names), size=n, p=ranks / ranks.sum())
    arr = np.asarray(names, dtype=object)
    out = arr[first].copy()
    two = (rng.random(n) < 0.15) & (first != second)
    out[two] = arr[first[two]] + "; " + arr[second[two]]
    out[rng.random(n) < p_empty] = ""
    return out


def synthetic_studies(n: int, pools: dict[str, list[str]], seed: int = 9) -> Any:
    """The studies frame as build_studies gives it (pipeline.studies.STUDY_COLUMNS), n rows."""
    import numpy as np
    import pandas as pd

    from pipeline.facets import _load

    rng = np.random.default_rng(seed)
    countries = sorted(set(_load().alias_to_country.values()))
    lenses = sorted(lens.name for lens in _load().lenses)
    rng.shuffle(countries)
    study_id = _hex_ids(rng, n, "r")
    years = rng.integers(1985, 2026, n).astype(float)
    years[rng.random(n) < 0.03] = np.nan
    frame = pd.DataFrame({
        "study_id": study_id,
        "title": _pick(rng, pools["title"], n),
        "authors": _pick(rng, pools["authors"], n),
        "year": pd.array(years, dtype="Float64").astype("Int64"),
        "doi": np.where(rng.random(n) < 0.8, _doi_prefixes(rng, n) + study_id, ""),
        "venue": _pick(rng, pools["venue"], n),
        "abstract": _pick(rng, pools["abstract"], n),
        "flags": np.where(rng.random(n) < 0.1, "truncated; language:en", "language:en"),
        "records": np.where(rng.random(n) < 0.2, 2, 1).astype("int64"),
        "countries": _facet_lists(rng, countries, n, p_empty=0.4, zipf=1.3),
        "design": _weighted(rng, DESIGN_WEIGHTS, n),
        "lens": _facet_lists(rng, lenses, n, p_empty=0.85, zipf=1.0),
    })
    frame["record_ids"] = frame["study_id"]
    frame["sources"] = "scopus_export.csv"
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("str")
    return frame


def _doi_prefixes(rng: Any, n: int) -> Any:
    import numpy as np

    return np.char.add("10.", np.char.mod("%d/", rng.integers(1000, 9999, n))).astype(object)


def synthetic_assignments(studies: Any, pools: dict[str, list[str]], codebook: Any, seed: int = 11) -> Any:
    """~3 assignments per study (0-7), each code of the codebook weighted by its category."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_codes = np.minimum(rng.poisson(3.0, len(studies)), 7)
    study_rows = np.repeat(np.arange(len(studies)), n_codes)
    m = len(study_rows)
    codes = [c for c in codebook.codes]
    weight = np.asarray([CATEGORY_WEIGHTS[c.category] / sum(d.category == c.category for d in codes) for c in codes])
    code_ids = np.asarray([c.id for c in codes], dtype=object)[rng.choice(len(codes), m, p=weight / weight.sum())]
    category = np.asarray([c.split(".")[0] for c in code_ids], dtype=object)
    method = _weighted(rng, METHOD_WEIGHTS, m)
    direction = np.where(category == "benefits", _weighted(rng, DIRECTION_WEIGHTS, m), "")
    confidence = np.where(method == "reviewer", 1.0, np.round(rng.uniform(0.3, 0.95, m), 4))
    frame = pd.DataFrame({
        "assignment_id": _hex_ids(rng, m, "a"),
        "study_id": studies["study_id"].to_numpy()[study_rows],
        "code": code_ids,
        "category": category,
        "direction": direction,
        "evidence": _pick(rng, pools["sentence"], m),
        "method": method,
        "confidence": confidence,
        "rule": np.where(method == "rule", code_ids + ":phrase", ""),
        "decided_by": np.where(method == "reviewer", "ana", "machine"),
    })
    frame = frame.drop_duplicates(["study_id", "code"]).reset_index(drop=True)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("str")
    return frame


def synthetic_records(studies: Any, seed: int = 13) -> tuple[Any, Any]:
    """(records, groups) that build_studies turns back into one study per row of `studies`: 1.25 records per study
    (a fifth of the studies have a duplicate; one study in 40 has two), as records_to_frame and dedupe give them."""
    import numpy as np
    import pandas as pd

    from pipeline.records import RECORD_COLUMNS

    rng = np.random.default_rng(seed)
    n = len(studies)
    copies = 1 + (rng.random(n) < 0.2).astype(int) + (rng.random(n) < 0.025).astype(int)
    rows = np.repeat(np.arange(n), copies)
    first = np.r_[True, rows[1:] != rows[:-1]]
    m = len(rows)
    record_id = np.where(first, studies["study_id"].to_numpy()[rows], _hex_ids(rng, m, "d"))
    take = {c: studies[c].to_numpy()[rows] for c in ("title", "authors", "doi", "venue", "abstract")}
    for column in ("doi", "venue"):  # a duplicate often lacks a field the canonical record has
        take[column] = np.where(~first & (rng.random(m) < 0.5), "", take[column])
    records = pd.DataFrame({
        "id": np.char.mod("%d", np.arange(1, m + 1)).astype(object), "source_format": "csv",
        "source_file": np.where(first, "scopus_export.csv", "wos_export.txt"), "position": np.arange(1, m + 1),
        **take, "year": studies["year"].to_numpy()[rows], "record_id": record_id,
        "flags": np.where(rng.random(m) < 0.1, "truncated; language:en", "language:en"),
    })
    for column in RECORD_COLUMNS:
        if column not in records.columns and column != "extra":
            records[column] = ""
    records = records[[c for c in RECORD_COLUMNS if c != "extra"]]
    records["year"] = records["year"].astype("Int64")
    for column in records.columns:
        if records[column].dtype == object:
            records[column] = records[column].astype("str")
    groups = pd.DataFrame({
        "record_id": records["record_id"], "id": records["id"],
        "duplicate_group": studies["study_id"].to_numpy()[rows], "keep": first,
        "match_reason": np.where(copies[rows] > 1, np.where(first, "canonical of 2 records", "doi: doi=1.00"), ""),
    }).astype({"record_id": "str", "id": "str", "duplicate_group": "str", "match_reason": "str"})
    return records, groups


def duplicates_sheet(records: Any, groups: Any) -> Any:
    """One row per merged record beside its canonical one (dedupe's SHEET_COLUMNS)."""
    import pandas as pd

    from pipeline.dedupe.report import SHEET_COLUMNS, SHEET_FIELDS

    canonical = records[groups["keep"].to_numpy()].set_index("record_id")
    merged = records[~groups["keep"].to_numpy()]
    group_of = groups.set_index("record_id")["duplicate_group"]
    a = canonical.loc[group_of.loc[merged["record_id"]].to_numpy()].reset_index()
    frame = pd.DataFrame({"decision": "", "status": "merged", "reason": "doi: doi=1.00", "score": 0.95},
                         index=range(len(merged)))
    for field in SHEET_FIELDS:
        frame[f"{field}_a"] = a[field].to_numpy()
        frame[f"{field}_b"] = merged[field].to_numpy()
    frame["record_id_a"] = a["record_id"].to_numpy()
    frame["record_id_b"] = merged["record_id"].to_numpy()
    return frame[SHEET_COLUMNS]


def prepare(n: int, work: Path) -> Path:
    """Make (once) the Parquet inputs for n studies; return their folder."""
    folder = work / f"n{n}"
    if (folder / "done").exists():
        return folder
    import pandas as pd

    from pipeline.codebook import load_codebook

    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pools = text_pools()
    studies = synthetic_studies(n, pools)
    assignments = synthetic_assignments(studies, pools, load_codebook(CODEBOOK))
    records, groups = synthetic_records(studies)
    for name, frame in (("studies", studies), ("assignments", assignments), ("records", records),
                        ("groups", groups), ("duplicates", duplicates_sheet(records, groups))):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    pd.Series(pools["abstract"]).to_frame("abstract").to_parquet(folder / "abstracts.parquet")
    (folder / "done").write_text("")
    print(f"made {n:,} studies, {len(assignments):,} assignments, {len(records):,} records in "
          f"{time.perf_counter() - start:.0f} s ({folder})", flush=True)
    return folder


# ---------------------------------------------------------------- one stage, in a child process


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS (Linux 4.0+)
    except OSError:
        pass


def run_stage(stage: str, folder: Path, real_facets: bool) -> dict[str, Any]:
    import pandas as pd

    from pipeline.codebook import load_codebook

    codebook = load_codebook(CODEBOOK)
    if stage == "facets":
        return _time_facets(folder, codebook)
    if stage == "studies":
        records = pd.read_parquet(folder / "records.parquet")
        groups = pd.read_parquet(folder / "groups.parquet")
        if not real_facets:
            _stub_facets(pd.read_parquet(folder / "studies.parquet", columns=["countries", "design", "lens"]))
        from pipeline.studies import build_studies

        return _measure(lambda: build_studies(records, groups, lenses=codebook.lenses or None), len(groups))
    studies = pd.read_parquet(folder / "studies.parquet")
    assignments = pd.read_parquet(folder / "assignments.parquet")
    n = len(studies)
    from pipeline.export import prisma_counts

    prisma = prisma_counts(studies, assignments, identified_by_source={"scopus_export.csv": n,
                                                                       "wos_export.txt": n // 4})
    if stage == "matrix":
        from pipeline.synth import build_matrix

        return _measure(lambda: build_matrix(assignments, studies, codebook), n)
    out = Path(tempfile.mkdtemp(prefix=f"export_bench_{stage}_", dir=folder))
    agreement = _agreement(assignments)
    if stage == "export":
        from types import SimpleNamespace

        from pipeline.stages import export_stage

        sheet = pd.read_parquet(folder / "duplicates.parquet")
        workspace = SimpleNamespace(outputs_dir=out)
        return _measure(lambda: export_stage(workspace, studies, assignments, codebook, prisma, sheet, agreement),
                        n, out)
    from pipeline.export import write_exports
    from pipeline.synth import build_matrix

    matrix = build_matrix(assignments, studies, codebook)
    formats = {"prisma": ("prisma",)}.get(stage, (stage,))
    return _measure(lambda: write_exports(matrix, prisma, out, formats=formats, agreement=agreement), n, out)


def _measure(work: Any, n: int, out: Path | None = None) -> dict[str, Any]:
    _reset_peak()
    rss_start = _rss_mb("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    work()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    result = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
              "studies_per_second": round(n / seconds) if seconds else None,
              "rss_start_mb": round(rss_start), "peak_rss_mb": round(_rss_mb("VmHWM"))}
    if out is not None:
        files = sorted(p for p in out.iterdir() if p.is_file())
        result["output_mb"] = round(sum(p.stat().st_size for p in files) / MB, 1)
        result["largest"] = max(files, key=lambda p: p.stat().st_size).name if files else ""
        for path in files:
            path.unlink()
        out.rmdir()
    return result


def _agreement(assignments: Any) -> Any:
    """The agreement tables before any reviewer decision (small whatever the review's size)."""
    from pipeline.agreement import agreement_report
    from pipeline.ledger import empty_ledger

    return agreement_report(empty_ledger(), assignments.head(5000))


def _stub_facets(studies: Any) -> None:
    """Replace the facet regexes by a cheap function that hands out the synthetic studies' facets in turn."""
    import itertools

    import pipeline.studies as module

    rows = itertools.cycle(list(studies[["countries", "design", "lens"]].itertuples(index=False, name=None)))

    def lookup(title: str, abstract: str, *, lenses: Any = None) -> dict[str, Any]:
        countries, design, lens = next(rows)
        return {"countries": [c for c in countries.split("; ") if c], "country_parents": {}, "design": design,
                "designs": [design], "lenses": [x for x in lens.split("; ") if x]}

    module.study_facets = lookup  # type: ignore[attr-defined]


def _time_facets(folder: Path, codebook: Any) -> dict[str, Any]:
    import pandas as pd

    from pipeline.facets import study_facets

    abstracts = pd.read_parquet(folder / "abstracts.parquet")["abstract"].tolist()[:1000]
    study_facets("warm", "up", lenses=codebook.lenses or None)
    start = time.perf_counter()
    for text in abstracts:
        study_facets("School-to-school collaboration", text, lenses=codebook.lenses or None)
    per_study = (time.perf_counter() - start) / len(abstracts)
    return {"seconds": round(per_study * 1e3, 2), "cpu_seconds": "-", "studies_per_second": round(1 / per_study),
            "note": f"ms per study (study_facets on {len(abstracts)} real abstracts, with the codebook's lenses)"}


# ---------------------------------------------------------------- driver


def _child(args: argparse.Namespace) -> None:
    if args.child == "prepare":
        folder = Path(args.folder)
        prepare(int(folder.name[1:]), folder.parent)
        return
    result = run_stage(args.child, Path(args.folder), args.real_facets)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(stage: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one stage in a fresh interpreter; kill it if its memory passes the cap."""
    import psutil

    command = [sys.executable, __file__, "--child", stage, "--folder", str(folder)]
    command += ["--pipeline-root", args.pipeline_root] + (["--real-facets"] if args.real_facets else [])
    log = folder / f"{stage}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True)
        watched = psutil.Process(process.pid)
        cap = args.mem_cap_gb * 1024 * MB
        killed = False
        while process.poll() is None:
            try:
                if watched.memory_info().rss > cap:
                    process.kill()
                    killed = True
            except psutil.Error:
                pass
            time.sleep(0.2)
    if killed:
        return {"error": f"killed: resident memory passed {args.mem_cap_gb} GB"}
    lines = [line for line in log.read_text().splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][7:]) if lines else {"error": f"exit code {process.returncode}; see {log}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "export_bench"),
                        help="where the synthetic inputs are kept between runs")
    parser.add_argument("--pipeline-root", default=str(ROOT), help="the checkout whose `pipeline` is timed")
    parser.add_argument("--mem-cap-gb", type=float, default=6.0)
    parser.add_argument("--real-facets", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, args.pipeline_root)
    if args.child:
        _child(args)
        return
    print(f"pipeline: {args.pipeline_root}; memory cap {args.mem_cap_gb} GB per stage")
    header = (f"{'studies':>9} {'stage':<8} {'seconds':>9} {'cpu s':>9} {'studies/s':>10} {'rss start MB':>12} "
              f"{'peak MB':>8}  notes")
    print(header)
    for n in args.sizes:
        folder = Path(args.work) / f"n{n}"
        if not (folder / "done").exists():  # made in a child too: its memory goes back when it ends
            folder.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, __file__, "--child", "prepare", "--folder", str(folder),
                            "--pipeline-root", args.pipeline_root], check=True)
        for stage in args.stages:
            if stage == "facets" and n != args.sizes[0]:
                continue
            result = _spawn(stage, folder, args)
            if "error" in result:
                print(f"{n:>9,} {stage:<8} {'-':>9} {'-':>9} {'-':>10} {'-':>12} {'-':>8}  {result['error']}",
                      flush=True)
                continue
            note = result.get("note") or (f"{result['output_mb']} MB written, largest {result['largest']}"
                                          if "output_mb" in result else "")
            print(f"{n:>9,} {stage:<8} {result['seconds']:>9} {result.get('cpu_seconds', '-'):>9} "
                  f"{result['studies_per_second'] or '-':>10} "
                  f"{result.get('rss_start_mb', '-'):>12} {result.get('peak_rss_mb', '-'):>8}  {note}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
