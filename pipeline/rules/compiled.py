"""Which build of the rule engine's modules runs: the Cython-compiled one (setup.py) or the source.

`make install` compiles pipeline/rules/{nlp,prefilter,engine}.py into extension modules beside them, which Python
imports in preference to the source, and records each source's sha256 in compiled.json. A module edited since
(or with no record) would run stale, so `use_current_sources` loads such a module from its source instead, with a
warning; run `make install` again to recompile. Both builds give the same hits (tests/test_rules.py).
Set REVIEW_RULES_SOURCE=1 to run the source anyway (a profiler or debugger sees its lines).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

PACKAGE = "pipeline.rules"
HERE = Path(__file__).resolve().parent
COMPILED_MODULES = ("nlp", "prefilter", "engine")  # in import order: engine imports the other two
MANIFEST = HERE / "compiled.json"
ACCELERATOR_SOURCE = HERE / "fastdoc.pyx"


def source_forced() -> bool:
    """REVIEW_RULES_SOURCE=1: run every module from its source (for a profiler or a debugger)."""
    return os.environ.get("REVIEW_RULES_SOURCE", "") not in ("", "0")


def compiled_path(name: str) -> Path | None:
    """The module's compiled extension beside its source, if one was built."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = HERE / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def built_from_current_source(name: str, suffix: str = ".py") -> bool:
    """Whether the extension was compiled from the source as it is now (compiled.json holds its sha256)."""
    try:
        recorded = json.loads(MANIFEST.read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError):
        return False
    return recorded == hashlib.sha256((HERE / f"{name}{suffix}").read_bytes()).hexdigest()


def fastdoc() -> ModuleType | None:
    """pipeline/rules/fastdoc.pyx's build, when there is one built from the current source (else None: nlp.py
    reads the Doc in Python)."""
    if source_forced() or compiled_path("fastdoc") is None:
        return None
    if not built_from_current_source("fastdoc", ".pyx"):
        log.warning("pipeline/rules/fastdoc.pyx changed since it was compiled: not using it; run `make install`")
        return None
    return importlib.import_module(f"{PACKAGE}.fastdoc")


def use_current_sources() -> dict[str, str]:
    """Load from source every module whose extension is stale; name -> 'compiled', 'source' or 'stale source'."""
    builds = {}
    forced = source_forced()
    for name in COMPILED_MODULES:
        if compiled_path(name) is None:
            builds[name] = "source"
        elif forced:
            _load_source(name)
            builds[name] = "source"
        elif built_from_current_source(name):
            builds[name] = "compiled"
        else:
            log.warning("pipeline/rules/%s.py changed since it was compiled: running its source (slower); "
                        "run `make install` to compile it again", name)
            _load_source(name)
            builds[name] = "stale source"
    return builds


def running_build(name: str) -> str:
    """'compiled' or 'source': what the imported module is."""
    module = sys.modules.get(f"{PACKAGE}.{name}")
    origin = getattr(module, "__file__", "") or ""
    return "compiled" if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "source"


def load_source_module(name: str, alias: str) -> ModuleType:
    """The module's source, loaded under another name (to compare it with the compiled build)."""
    spec = importlib.util.spec_from_file_location(alias, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def _load_source(name: str) -> None:
    full_name = f"{PACKAGE}.{name}"
    if full_name in sys.modules:
        return
    setattr(sys.modules[PACKAGE], name, load_source_module(name, full_name))
