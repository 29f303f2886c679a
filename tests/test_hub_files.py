"""The files of the instructor guide's JupyterHub recipes (hub/, postBuild), without a hub.

The live hub is tests/hub/test_jupyterhub.py; this checks, in a second, what it cannot: the start
hook's copy rules, that the guides and the notebooks agree on the kernel name, that every install
is non-editable, and that the settings override turns the news off.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"
START = HUB / "start-course.sh"
GUIDES = (ROOT / "lessons" / "instructor_guide.md", ROOT / "lessons" / "ko" / "instructor_guide.md")


def _start(tmp_path, bundle, *command, home=None):
    home = home or tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "RNN_COURSE_BUNDLE": str(bundle)}
    return subprocess.run([str(START), *command], env=env, capture_output=True, text=True, timeout=30,
                          check=False), home


@pytest.fixture
def bundle(tmp_path):
    folder = tmp_path / "bundle"
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "01_rnn.ipynb").write_text("student 01\n")
    (folder / "lessons" / "en").mkdir(parents=True)
    (folder / "lessons" / "en" / "01_rnn.md").write_text("lesson\n")
    (folder / "README.md").write_text("readme\n")
    return folder


def test_start_hook_copies_the_bundle_then_runs_the_command_with_its_arguments(tmp_path, bundle):
    done, home = _start(tmp_path, bundle, sys.executable, "-c", "import sys; print(sys.argv[1:])", "--a", "b c")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['--a', 'b c']"
    copied = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    assert copied == ["rnn-course/README.md", "rnn-course/lessons/en/01_rnn.md", "rnn-course/notebooks/01_rnn.ipynb"]


def test_start_hook_never_overwrites_a_students_work_and_adds_new_notebooks(tmp_path, bundle):
    _, home = _start(tmp_path, bundle, "true")
    (home / "rnn-course" / "notebooks" / "01_rnn.ipynb").write_text("my answers\n")
    (bundle / "notebooks" / "02_gradients_through_time.ipynb").write_text("student 02\n")
    done, _ = _start(tmp_path, bundle, "true", home=home)
    assert done.returncode == 0, done.stderr
    assert (home / "rnn-course" / "notebooks" / "01_rnn.ipynb").read_text() == "my answers\n"
    assert (home / "rnn-course" / "notebooks" / "02_gradients_through_time.ipynb").read_text() == "student 02\n"


def test_start_hook_without_a_bundle_still_starts_the_server(tmp_path):
    done, home = _start(tmp_path, tmp_path / "no-bundle", "echo", "server started")
    assert done.returncode == 0 and done.stdout.strip() == "server started"
    assert "no bundle at" in done.stderr
    assert not (home / "rnn-course").exists()


def _hub_sections(text: str) -> str:
    """The guide's JupyterHub section: from the first heading that names JupyterHub to the next
    heading of the same or a higher level (section numbers change as other sections are added)."""
    lines, headings, fenced = text.splitlines(), [], False
    for i, line in enumerate(lines):  # a "# comment" inside a code block is not a heading
        fenced ^= line.startswith("```")
        if not fenced and (match := re.match(r"(#{1,6}) ", line)):
            headings.append((i, len(match.group(1))))
    start = next(((i, level) for i, level in headings if "JupyterHub" in lines[i] and level >= 2), None)
    assert start is not None, "expected a heading that names JupyterHub"
    end = next((i for i, level in headings if i > start[0] and level <= start[1]), len(lines))
    return "\n".join(lines[start[0]:end])


def _code_lines(section: str) -> list[str]:
    """The lines inside fenced code blocks (the commands), without their comments."""
    lines, fenced = [], False
    for line in section.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            lines.append(re.sub(r"\s+#\s.*$", "", line))
    return lines


@pytest.mark.parametrize("guide", GUIDES, ids=["en", "ko"])
def test_the_separate_kernel_recipe_installs_the_kernel_the_notebooks_ask_for(guide):
    names = {json.loads(p.read_text(encoding="utf-8"))["metadata"]["kernelspec"]["name"]
             for p in sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))}
    assert names == {"python3"}
    section = _hub_sections(guide.read_text(encoding="utf-8"))
    installs = [line for line in _code_lines(section) if "ipykernel install" in line]
    assert installs, f"{guide}: no `ipykernel install` command in the JupyterHub section"
    for line in installs:
        args = shlex.split(line)
        assert args[args.index("--name") + 1] in names, line
        assert "--prefix" in args, f"{line}: expected --prefix (the server's environment), not a system-wide install"


@pytest.mark.parametrize("guide", GUIDES, ids=["en", "ko"])
def test_the_guides_hub_section_installs_the_course_non_editable(guide):
    section = _hub_sections(guide.read_text(encoding="utf-8"))
    installs = [line for line in _code_lines(section) if "pip install" in line]
    assert any(re.search(r"pip install \.$", line) for line in installs), installs
    for line in installs:
        assert not re.search(r"\s(-e|--editable)\b", line), line


def test_postbuild_and_dockerfile_install_non_editable_and_ship_the_override():
    for path in (ROOT / "postBuild", HUB / "Dockerfile"):
        text = path.read_text(encoding="utf-8")
        installs = [line for line in text.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
        assert installs, path
        assert not any(re.search(r"\s(-e|--editable)\b", line) for line in installs), installs
        assert "hub/lab-settings/overrides.json" in text and "share/jupyter/lab/settings" in text, path
    dockerfile = (HUB / "Dockerfile").read_text(encoding="utf-8")
    assert "python -m course_utils.bundle /srv/rnn-course/bundle" in dockerfile
    assert "rm -rf /tmp/rnn-course" in dockerfile  # the copied solutions/ leave the image
    assert 'ENTRYPOINT ["/usr/local/bin/start-course.sh"]' in dockerfile
    assert "ENV RNN_COURSE_BUNDLE=/srv/rnn-course/bundle" in dockerfile


def test_the_settings_override_turns_off_the_news_and_update_checks():
    overrides = json.loads((HUB / "lab-settings" / "overrides.json").read_text(encoding="utf-8"))
    assert overrides == {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                                          "checkForUpdates": False}}


def test_hub_config_binds_to_localhost_and_starts_servers_through_the_hook(monkeypatch):
    for name in ("RNN_HUB_IP", "RNN_HUB_PORT", "RNN_HUB_HOMES", "RNN_COURSE_BUNDLE", "RNN_HUB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(HUB)).load_config()  # as JupyterHub loads it
    assert config.JupyterHub.ip == "127.0.0.1" and config.JupyterHub.hub_ip == "127.0.0.1"
    assert config.JupyterHub.spawner_class == "simple"
    assert config.Spawner.cmd[0] == str(START) and os.access(START, os.X_OK)
    assert config.Spawner.cmd[1:] == [sys.executable, "-m", "jupyterhub.singleuser"]  # the hub's own environment
    settings = [a.split("=", 1)[1] for a in config.Spawner.args if a.startswith("--LabApp.app_settings_dir=")]
    assert settings and (Path(settings[0]) / "overrides.json").is_file()
    assert "--MappingKernelManager.cull_idle_timeout=1800" in config.Spawner.args
    assert config.Spawner.environment == {"RNN_COURSE_BUNDLE": "/srv/rnn-course/bundle"}
    assert "--MappingKernelManager.cull_connected=True" in config.Spawner.args
