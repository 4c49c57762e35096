"""The product stands on its own: it never imports the demo, and without a partners file a
refresh is refused with one line that says what to pass."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = str(Path(sys.executable).with_name("corpus"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_product_module_imports_the_demo():
    product = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "dags").rglob("*.py")]
    assert len(product) > 40
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if "demo" in m)
        for path in product
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_refresh_without_a_partners_file_is_refused_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUS_")}
    env["CORPUS_HOME"] = str(tmp_path / "home")
    run = subprocess.run([CORPUS, "refresh"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1
    message = " ".join(run.stderr.split())
    assert message.startswith(
        "error: no partners file: pass --partners FILE or set CORPUS_PARTNERS"
    )
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "home").exists()

    missing = tmp_path / "nowhere.yaml"
    run = subprocess.run(
        [CORPUS, "refresh"],
        capture_output=True,
        text=True,
        env={**env, "CORPUS_PARTNERS": str(missing)},
        timeout=120,
    )
    assert run.returncode == 1
    assert f"partners file {missing} does not exist" in " ".join(run.stderr.split())
