"""Build step: the rule engine's pure-Python modules are also compiled with Cython, when it and a C compiler are
there (`make install` has both), for speed; the same source runs either way (pipeline/rules/compiled.py). Also
built: pipeline/rules/fastdoc.pyx, two reads of a spaCy Doc in C that nlp.py does in Python without it.

Project metadata lives in pyproject.toml; this file only adds the optional extension modules and records the
sha256 of each compiled source, so that a module edited after the build runs from its source, not stale.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
RULES = ROOT / "pipeline" / "rules"


def _compiled_modules() -> tuple[str, ...]:
    """pipeline/rules/compiled.py's COMPILED_MODULES, read from its source (importing it would import the
    package's dependencies, which a build need not have)."""
    tree = ast.parse((RULES / "compiled.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMPILED_MODULES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("pipeline/rules/compiled.py defines no COMPILED_MODULES")


COMPILED_MODULES = _compiled_modules()
ACCELERATORS = ("fastdoc",)  # .pyx modules: C-level access to spaCy's structs
MANIFEST = RULES / "compiled.json"


def compiled_rule_modules() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:  # no Cython: the engine runs as plain Python
        MANIFEST.unlink(missing_ok=True)
        return []
    import numpy  # spaCy's Doc declarations cimport numpy's

    extensions = [
        Extension(f"pipeline.rules.{name}", [f"pipeline/rules/{name}.py"], optional=True)
        for name in COMPILED_MODULES
    ] + [
        Extension(
            f"pipeline.rules.{name}",
            [f"pipeline/rules/{name}.pyx"],
            language="c++",
            include_dirs=[numpy.get_include()],
            optional=True,
        )
        for name in ACCELERATORS
    ]
    sources = {name: _sha256(RULES / f"{name}.py") for name in COMPILED_MODULES}
    sources |= {name: _sha256(RULES / f"{name}.pyx") for name in ACCELERATORS}
    MANIFEST.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    # annotation_typing off: the annotations document; they are not C types (a defaultdict is a dict here)
    directives = {"language_level": 3, "annotation_typing": False}
    return cythonize(extensions, compiler_directives=directives, quiet=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


setup(ext_modules=compiled_rule_modules())
