"""A server and two clients as separate processes on localhost; one client is killed after
the first round and the run still ends, with the other client's global model saved."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from cmap.data.demo import Region, generate
from tests.helpers import CONFIGS, REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "cmap", *args], stderr=log, stdout=log, env=env)


def wait_for(path, text, process, seconds=300):
    end = time.time() + seconds
    while time.time() < end:
        if path.exists() and text in path.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"stopped before {text!r}:\n{path.read_text()}")
        time.sleep(0.5)
    pytest.fail(f"no {text!r} after {seconds} s:\n{path.read_text()}")


@pytest.mark.slow
def test_server_and_clients_survive_a_killed_client(tmp_path):
    for name, seed in (("north", 1), ("south", 2)):
        generate(tmp_path / name, 40, [2019], cube_size=0, seed=seed, region=Region(name=name))
    args = ["--config", str(CONFIGS / "classifier.yaml"), "--trainer.accelerator", "cpu"]
    federation = {
        "clients": {
            n: [*args, "--data.init_args.root", str(tmp_path / n)] for n in ("north", "south")
        },
        "classes": ["other", "ble_tendre", "ble_dur", "orge", "colza", "mais", "tournesol"],
        "rounds": 3,
        "out": str(tmp_path / "fed"),
        "round_timeout_s": 120,
    }
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(federation))
    address = f"127.0.0.1:{free_port()}"
    logs = {n: (tmp_path / f"{n}.log").open("w") for n in ("server", "north", "south")}
    server = start(
        ["federate", "--config", tmp_path / "fed.yaml", "--serve", address], logs["server"]
    )
    clients = {
        n: start(
            ["federate", "--config", tmp_path / "fed.yaml", "--client", n, "--server", address],
            logs[n],
        )
        for n in ("north", "south")
    }
    try:
        wait_for(tmp_path / "server.log", "round 1: val macro-F1", server)
        clients["south"].send_signal(signal.SIGKILL)
        assert server.wait(timeout=300) == 0, (tmp_path / "server.log").read_text()
        assert clients["north"].wait(timeout=60) == 0
    finally:
        for process in (server, *clients.values()):
            process.kill()
    rounds = json.loads((tmp_path / "fed" / "version_0" / "rounds.json").read_text())
    assert rounds["1"]["trained"] == ["north", "south"]
    assert rounds["3"]["trained"] == ["north"]
    assert (tmp_path / "fed" / "clients" / "north" / "version_0" / "global.ckpt").is_file()
