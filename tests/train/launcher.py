"""Running `pathjax.launch.train` in a subprocess, as a user does: the repository root and a CPU
device count of the test's choosing (conftest's eight fake devices are not inherited)."""

import os
import subprocess
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env(devices: int) -> dict[str, str]:
    """This process's environment with `devices` CPU devices and the repository importable."""
    out = dict(os.environ)
    out["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    out["JAX_PLATFORMS"] = "cpu"
    out["PYTHONPATH"] = REPO + os.pathsep + out.get("PYTHONPATH", "")
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def two_processes(command: Callable[..., list[str]]) -> list[tuple[str, str]]:
    """`command(*distributed_flags)` as two processes of four CPU devices each, joined by
    jax.distributed; both must succeed. Returns their (stdout, stderr)."""
    port = free_port()
    procs = [
        subprocess.Popen(
            command(
                "--config.distributed.enabled=True",
                f"--config.distributed.coordinator_address=localhost:{port}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
            ),
            cwd=REPO,
            env=env(4),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return outputs
