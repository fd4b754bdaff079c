"""Running `pathjax.launch.train` in a subprocess, as a user does: the repository root and a CPU
device count of the test's choosing (conftest's eight fake devices are not inherited)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env(devices: int) -> dict[str, str]:
    """This process's environment with `devices` CPU devices and the repository importable."""
    out = dict(os.environ)
    out["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    out["JAX_PLATFORMS"] = "cpu"
    out["PYTHONPATH"] = REPO + os.pathsep + out.get("PYTHONPATH", "")
    return out
