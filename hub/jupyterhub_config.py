"""JupyterHub for the course's labs on one machine (recipe (a) of the instructor guide, section 6).

Start it from the environment that has JupyterHub, JupyterLab and the course installed (not
editable: ``python -m pip install .`` in a clone), after writing the student bundle::

    python -m course_utils.bundle /srv/rnn-course/bundle
    jupyterhub -f hub/jupyterhub_config.py

tests/hub/test_jupyterhub.py starts JupyterHub with this file (plus free ports and temporary
folders) and two students in headless Chromium.

- Every student's server is ``jupyterhub-singleuser`` of the interpreter that runs the hub, started through
  ``hub/start-course.sh``, which copies the bundle into ``~/rnn-course`` (missing files only).
- The spawner is JupyterHub's SimpleLocalProcessSpawner: every server runs as the hub's own
  user, with the home ``RNN_HUB_HOMES/<name>``. It needs no system accounts, so it works the same
  when the hub runs as root (a container, CI) and as a normal user (a laptop). It gives students
  no isolation from each other, and the dummy authenticator lets anyone in who knows the shared
  password: for a lab on a trusted network or a trial run. For a real class keep everything below
  the authenticator and spawner lines, and choose a real authenticator and a spawner that
  separates users (LocalProcessSpawner with system users, DockerSpawner or KubeSpawner with
  hub/Dockerfile).
"""

import importlib.util
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (defined by JupyterHub when it loads this file)

HERE = Path(__file__).resolve().parent

c.JupyterHub.ip = os.environ.get("RNN_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("RNN_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ.get("RNN_HUB_PASSWORD", "")  # empty: any password
c.Authenticator.allow_all = True

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.environ.get("RNN_HUB_HOMES", "/srv/rnn-course/homes") + "/{username}"
# jupyterhub-singleuser of this very interpreter, wherever pip put the script
c.Spawner.cmd = [str(HERE / "start-course.sh"), sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.environment = {"RNN_COURSE_BUNDLE": os.environ.get("RNN_COURSE_BUNDLE", "/srv/rnn-course/bundle")}
c.Spawner.default_url = "/lab/tree/rnn-course/notebooks"
c.Spawner.args = [
    # the settings override that turns off JupyterLab's "official Jupyter news?" popup
    f"--LabApp.app_settings_dir={HERE / 'lab-settings'}",
    # a kernel that ran nothing for 30 minutes is shut down (checked every 5 minutes), even with its
    # notebook open in a tab: the notebook stays, its variables go; re-run the cells to go on
    "--MappingKernelManager.cull_idle_timeout=1800",
    "--MappingKernelManager.cull_interval=300",
    "--MappingKernelManager.cull_connected=True",
]
if os.getuid() == 0:  # a hub run as root (a container, CI) runs the servers as root too
    c.Spawner.args.append("--ServerApp.allow_root=True")
c.Spawner.start_timeout = 120  # the first start on a busy machine imports JupyterLab's extensions
c.Spawner.http_timeout = 120

# a server with no activity for an hour is stopped (its files stay), by jupyterhub-idle-culler
# (python -m pip install jupyterhub-idle-culler) when it is installed
if importlib.util.find_spec("jupyterhub_idle_culler") is not None:
    c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler-role",
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                                "services": ["jupyterhub-idle-culler-service"]}]
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler-service",
                              "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
