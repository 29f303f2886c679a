"""environment.yml (conda / Binder) and pyproject.toml must describe the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"python", "pip"}


def _normalise(req: str) -> tuple[str, str]:
    """'torch==2.13.0' or conda's 'pytorch=2.13.0' -> ('torch', '==2.13.0')."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", req)
    assert m, f"cannot parse requirement {req!r}"
    name, spec = m.group(1).lower(), m.group(2).replace(" ", "")
    name = CONDA_NAMES.get(name, name)
    if re.fullmatch(r"=[^=].*", spec):  # conda's single '=' pins a version like pip's '=='
        spec = "=" + spec
    return name, spec


def _conda_dependencies() -> dict[str, str]:
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^dependencies:\s*$", line):
            in_deps = True
            continue
        if in_deps and re.match(r"^\S", line):
            break
        m = re.match(r"^\s+-\s+([^#]+?)\s*(#.*)?$", line)
        if in_deps and m:
            name, spec = _normalise(m.group(1))
            if name not in CONDA_ONLY:
                deps[name] = spec
    return deps


def _pyproject_dependencies() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return dict(_normalise(r) for r in reqs)


def test_environment_yml_matches_pyproject():
    conda, pip = _conda_dependencies(), _pyproject_dependencies()
    assert "torch" in conda and "torch" in pip
    assert conda == pip, (f"only in environment.yml: {sorted(set(conda) - set(pip))}; "
                          f"only in pyproject.toml: {sorted(set(pip) - set(conda))}; "
                          f"different: {sorted(k for k in conda.keys() & pip.keys() if conda[k] != pip[k])}")


def test_torch_pin_is_the_same_everywhere():
    pin = _pyproject_dependencies()["torch"]
    assert re.fullmatch(r"==\d+\.\d+\.\d+", pin), f"torch must be pinned exactly, got {pin!r}"
    assert _conda_dependencies()["torch"] == pin
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    version = pin[2:]
    assert f"torch=={version}" in ci or 'pip install -e ".[test]"' in ci
    assert version in readme, "the README names the torch version a GPU user should install"


def test_normalise_handles_both_syntaxes():
    assert _normalise("pytorch=2.13.0") == ("torch", "==2.13.0")
    assert _normalise("torch==2.13.0") == ("torch", "==2.13.0")
    assert _normalise("numpy>=1.26") == ("numpy", ">=1.26")
