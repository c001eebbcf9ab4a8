"""``pip install .`` builds a wheel that holds the whole product: every app and sub-package,
its migrations and static files, and the project's templates (as ``project/templates``).

The wheel is built from a copy of the working tree, with pip and the build backend that
pyproject.toml names, as ``pip install .`` would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Folders that are the repository's, not the product's.
NOT_SHIPPED = {"tests", "bench", "node_modules", "var", "build", "dist"}


def product_packages() -> list[Path]:
    """Every folder with an ``__init__.py`` under a top-level package of the product."""
    roots = [
        path
        for path in REPO.iterdir()
        if path.is_dir() and path.name not in NOT_SHIPPED and (path / "__init__.py").exists()
    ]
    return sorted(init.parent for root in roots for init in root.rglob("__init__.py"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "templates"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in {path.relative_to(REPO).parts[0] for path in product_packages()}:
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = out.glob("auditlog_server-*.whl")
    return set(zipfile.ZipFile(path).namelist())


def test_the_wheel_holds_every_package_of_the_product(wheel: set[str]) -> None:
    missing = [
        str(package.relative_to(REPO))
        for package in product_packages()
        if f"{package.relative_to(REPO).as_posix()}/__init__.py" not in wheel
    ]
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert "project/settings.py" in wheel and "auditlog/compat.py" in wheel


def test_the_wheel_holds_migrations_templates_and_static_files(wheel: set[str]) -> None:
    expected = {
        path.relative_to(REPO).as_posix()
        for package in product_packages()
        for path in package.glob("migrations/*.py")
    }
    expected |= {
        path.relative_to(REPO).as_posix()
        for package in product_packages()
        for path in (package / "static").rglob("*")
        if path.is_file()
    }
    expected |= {
        "project/" + path.relative_to(REPO).as_posix()
        for path in (REPO / "templates").rglob("*.html")
    }
    assert any(name.startswith("auditlog/migrations/0001") for name in expected)
    assert "project/templates/base.html" in expected
    assert sorted(expected - wheel) == []


def test_the_wheel_holds_nothing_of_the_repositorys_own(wheel: set[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel}
    assert not tops & NOT_SHIPPED, tops & NOT_SHIPPED
    assert not any("__pycache__" in name for name in wheel)
