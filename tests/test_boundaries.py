"""Architecture boundaries: what each package may import, and zapctl's start-up cost."""

from __future__ import annotations

import ast
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ZAPCTL, child_env

ROOT = Path(__file__).resolve().parent.parent

# What shared/ may never import: it is used by all three programs.
SHARED_FORBIDDEN = {"zapd", "zaptui", "zapctl", "sqlalchemy", "textual"}

# zapd/domain is pure logic: no database, no network, no event loop, no other layer.
DOMAIN_FORBIDDEN = (
    {"sqlalchemy", "alembic", "asyncpg", "aiosqlite"}  # database
    | {"httpx", "fastapi", "starlette", "uvicorn", "websockets", "aiohttp", "requests"}  # network
    | {"playwright", "asyncio", "anyio", "socket"}  # event loop and raw I/O
    | {"zaptui", "zapctl", "textual"}  # other programs
    | {"zapd.db", "zapd.api", "zapd.daemon", "zapd.services", "zapd.connectors"}  # outer layers
    | {"zapd.realtime", "zapd.kernel", "zapd.prometheus"}
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, relative imports made absolute."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(path: Path, forbidden: set[str]) -> list[str]:
    names = imports_of(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")
    return sorted(
        name for name in names if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def _sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources under {package}"
    return files


def test_the_checker_sees_every_import_form() -> None:
    source = (
        "import sqlalchemy.orm\n"
        "from ..db import engine\n"
        "from . import rules\n"
        "from .rules import x\n"
        "def f():\n"
        "    import httpx\n"
    )
    names = imports_of(source, "zapd.domain.tickets")
    assert {"sqlalchemy.orm", "zapd.db", "zapd.db.engine", "zapd.domain.rules", "httpx"} <= names
    assert "zapd.domain.rules.x" in names
    assert imports_of("from . import a", "shared", is_package=True) == {"shared", "shared.a"}


@pytest.mark.parametrize("path", _sources("shared"), ids=lambda p: p.name)
def test_shared_imports_no_program_nor_heavy_library(path: Path) -> None:
    assert forbidden_imports(path, SHARED_FORBIDDEN) == []


@pytest.mark.parametrize("path", _sources("zapd/domain"), ids=lambda p: p.name)
def test_domain_is_pure(path: Path) -> None:
    assert forbidden_imports(path, DOMAIN_FORBIDDEN) == []


def test_light_modules_do_not_drag_in_heavy_ones(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import shared.enums, shared.phone, shared.cnpj, shared.paths, shared.settings\n"
        "import zapctl.main\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('zapd', 'textual', 'sqlalchemy'))\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_zapctl_help_starts_quickly(tmp_path: Path) -> None:
    # A regression guard against eager imports (e.g. SQLAlchemy or zapd pulled in at
    # import time), NOT a benchmark: the bound is loose enough for a busy 2-core CI box.
    env = child_env(tmp_path / "home")
    times = []
    for _ in range(3):
        started = time.perf_counter()
        proc = subprocess.run(
            [str(ZAPCTL), "--help"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        times.append(time.perf_counter() - started)
        assert proc.returncode == 0, proc.stderr
    assert statistics.median(times) < 2.0, times
