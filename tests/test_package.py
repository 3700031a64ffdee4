"""The package: a wheel builds offline, holds every sub-package and data file, installs and runs
from any folder; the command line starts without importing torch or the other heavy libraries."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "odesteer_core"
HEAVY = ("torch", "transformers", "gradio", "plotly", "umap", "sklearn", "datasets", "numpy")


def _run(args, *, cwd, env=None, timeout=120):
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _source_files(folder: Path) -> list[str]:
    """Files under ``folder`` as wheel paths, without bytecode caches."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel . --no-deps --no-build-isolation --no-index`` on a copy of the sources (building
    in place would leave ``build/`` and ``*.egg-info`` in the working tree)."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        PACKAGE, src / "odesteer_core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"]
    _run([*pip, "--no-index", "-w", str(out)], cwd=src, timeout=300)
    (built,) = out.glob("odesteer_studio-*.whl")
    print(f"\nwheel: {built.name}, {built.stat().st_size / 1024:.0f} KiB")
    return built


@pytest.mark.slow
def test_wheel_holds_every_sub_package_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(
        p.parent for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts
    )
    assert len(packages) >= 10
    for package in packages:
        modules = _source_files(package)
        missing = [m for m in modules if m.endswith(".py") and m not in names]
        assert not missing, f"modules missing from the wheel: {missing}"
    builtin = _source_files(PACKAGE / "concepts" / "builtin")
    assert builtin and all(name.endswith(".jsonl") for name in builtin)
    assert set(builtin) <= names
    demo = PACKAGE / "lm" / "demo_model"
    if demo.is_dir():  # every file of the offline demo model ships, whatever its kind
        missing = sorted(set(_source_files(demo)) - names)
        assert not missing, f"demo model files missing from the wheel: {missing}"
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc")]


@pytest.mark.slow
def test_wheel_metadata_matches_requirements_and_has_the_script(wheel):
    archive = zipfile.ZipFile(wheel)
    info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip()
        for line in archive.read(info).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]

    def name(spec: str) -> str:
        return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-")

    wanted = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert sorted(map(name, requires)) == sorted(map(name, wanted))
    torch_spec = next(r for r in requires if name(r) == "torch")
    assert "==" not in torch_spec and "+" not in torch_spec  # no CUDA build pinned
    entry_points = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "odesteer = odesteer_core.cli:main" in archive.read(entry_points).decode()


@pytest.mark.slow
def test_installed_wheel_runs_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
    _run([*pip, "--target", str(site), str(wheel)], cwd=tmp_path)
    env = {"PYTHONPATH": str(site)}
    where_code = "import odesteer_core; print(odesteer_core.__file__)"
    where = _run([sys.executable, "-c", where_code], cwd=tmp_path, env=env)
    assert Path(where.strip()).is_relative_to(site)  # the installed copy, not the checkout
    out = _run([sys.executable, "-m", "odesteer_core", "concepts", "--json"], cwd=tmp_path, env=env)
    names = {row["name"] for row in json.loads(out.strip().splitlines()[-1])["concepts"]}
    builtin = {p.stem for p in (PACKAGE / "concepts" / "builtin").glob("*.jsonl")}
    assert builtin and builtin <= names
    script = site / "bin" / "odesteer"
    if script.exists():  # the console script pip wrote for [project.scripts]
        assert "usage:" in _run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env)


def test_cli_import_loads_no_heavy_library():
    code = (
        "import sys, odesteer_core.cli, odesteer_core.__main__\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert _run([sys.executable, "-c", code], cwd=ROOT).strip() == "[]"


def test_help_answers_fast():
    """``--help`` imports no heavy library; its time is printed (asserting it would be flaky)."""
    args = [sys.executable, "-m", "odesteer_core", "--help"]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = _run(args, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    assert "usage:" in out and "concepts" in out
    print(f"\npython -m odesteer_core --help: best of 3 {min(times):.2f} s (budget 2 s)")
