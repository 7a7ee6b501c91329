"""A review workspace: review.yaml + codebook/ + corpus/ + outputs/, validated on load."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError, ReviewError

CONFIG_NAME = "review.yaml"
TEMPLATE_DIR = Path(__file__).parent / "templates" / "workspace"
BUNDLED_CODEBOOK = Path(__file__).resolve().parents[1] / "codebook" / "school_to_school.yaml"
SOURCE_NAMES = ("openalex", "crossref", "semanticscholar", "eric", "pubmed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceQuery(_Strict):
    """One scholarly source to harvest: its query, filters and paging limits."""

    query: str = Field(min_length=1)
    filters: dict[str, Any] = Field(default_factory=dict)
    since: str | None = None
    max_records: int = Field(default=1000, gt=0)
    base_url: str | None = None
    enabled: bool = True


class Sources(_Strict):
    """The scholarly sources a living review harvests; each is optional."""

    openalex: SourceQuery | None = None
    crossref: SourceQuery | None = None
    semanticscholar: SourceQuery | None = None
    eric: SourceQuery | None = None
    pubmed: SourceQuery | None = None

    def enabled(self) -> dict[str, SourceQuery]:
        return {name: query for name in SOURCE_NAMES if (query := getattr(self, name)) is not None and query.enabled}


class TopicSettings(_Strict):
    enabled: bool = True
    embedding: Literal["model2vec", "minilm", "tfidf"] = "minilm"  # why: README, "Topic models"
    seed: int = 42
    min_topic_size: int = Field(default=5, gt=1)
    max_fit_studies: int = Field(default=20_000, ge=4, description="fit on at most this many studies; place the rest")
    refit_share: float = Field(default=0.2, ge=0.0, le=1.0, description="refit when this share of studies is new")


class RunnerSettings(_Strict):
    """Where the flow's mapped tasks run: Prefect's default runner, a local Dask cluster, or a remote one."""

    kind: Literal["default", "dask"] = "default"
    address: str | None = Field(default=None, description="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    workers: int = Field(default=2, gt=0, description="local Dask cluster: worker processes")
    threads_per_worker: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "RunnerSettings":
        if self.address and self.kind != "dask":
            raise ValueError("address is a Dask scheduler's: set kind: dask too")
        return self


class ReviewConfig(_Strict):
    """The schema of review.yaml."""

    name: str = Field(min_length=1)
    description: str = ""
    inputs: list[str] = Field(default_factory=list, description="files or globs, relative to the workspace")
    codebook: str = "codebook/school_to_school.yaml"
    store: str = "sqlite:///corpus/review.db"
    outputs: str = "outputs"
    sources: Sources = Field(default_factory=Sources)
    schedule: str = "0 6 * * 1"
    topics: TopicSettings = Field(default_factory=TopicSettings)
    seed: int = 42
    batch_size: int = Field(default=5000, gt=0, description="records per batch: bounds memory and is the unit of work")
    runner: RunnerSettings = Field(default_factory=RunnerSettings)


@dataclass(frozen=True)
class Workspace:
    """A loaded, validated workspace with its paths resolved."""

    root: Path
    config: ReviewConfig

    @property
    def codebook_path(self) -> Path:
        return (self.root / self.config.codebook).resolve()

    @property
    def outputs_dir(self) -> Path:
        return self.root / self.config.outputs

    @property
    def corpus_dir(self) -> Path:
        return self.root / "corpus"

    @property
    def store_url(self) -> str:
        """SQLite paths in review.yaml are relative to the workspace, not the current directory."""
        url = self.config.store
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/") and url != "sqlite:///:memory:":
            return prefix + str((self.root / url[len(prefix) :]).resolve())
        return url

    def input_files(self) -> list[Path]:
        """Every file the input globs match, sorted, each once; hidden files skipped."""
        found: dict[Path, None] = {}
        for pattern in self.config.inputs:
            matches = sorted(self.root.glob(pattern)) if _is_glob(pattern) else [self.root / pattern]
            for path in matches:
                if path.is_file() and not path.name.startswith("."):
                    found.setdefault(path.resolve(), None)
        return sorted(found)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def load_workspace(root: str | Path = ".") -> Workspace:
    """Read and validate review.yaml; every problem is reported at once with its location."""
    root = Path(root).resolve()
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise ReviewError(
            f"no {CONFIG_NAME} in {root}; run the command inside a workspace, pass --workspace DIR, "
            "or create one with `review init DIR`."
        )
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(config_path, [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(config_path, ["the file must be a mapping of settings (name:, inputs:, codebook:, ...)"])
    try:
        config = ReviewConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(config_path, [_describe(err) for err in exc.errors()]) from exc
    workspace = Workspace(root=root, config=config)
    _check_paths(workspace, config_path)
    return workspace


def _describe(error: Any) -> str:
    location = " -> ".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see README for the keys review.yaml accepts)"
    return f"{location}: {message}"


def _check_paths(workspace: Workspace, config_path: Path) -> None:
    if not workspace.codebook_path.is_file():
        raise ConfigError(config_path, [f"codebook: file {workspace.config.codebook!r} does not exist"])


def init_workspace(target: str | Path, codebook: str | Path | None = None) -> Workspace:
    """Create a new workspace from the template; never overwrite an existing review.yaml."""
    target = Path(target).resolve()
    if (target / CONFIG_NAME).exists():
        raise ReviewError(f"{target / CONFIG_NAME} already exists; choose an empty folder for the new workspace.")
    source_codebook = Path(codebook) if codebook else BUNDLED_CODEBOOK
    if not source_codebook.is_file():
        raise ReviewError(f"codebook {source_codebook} does not exist; give the path of a YAML codebook with --codebook.")
    for sub in ("corpus/files", "outputs", "codebook"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    codebook_name = source_codebook.name
    shutil.copyfile(source_codebook, target / "codebook" / codebook_name)
    text = (TEMPLATE_DIR / CONFIG_NAME).read_text(encoding="utf-8").replace("{codebook}", f"codebook/{codebook_name}")
    (target / CONFIG_NAME).write_text(text, encoding="utf-8")
    shutil.copyfile(TEMPLATE_DIR / "corpus_README.md", target / "corpus" / "README.md")
    return load_workspace(target)
