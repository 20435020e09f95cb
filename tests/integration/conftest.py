"""Shared fixtures: the edgeq binaries under test and the project's test data."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary(env_name, default):
    path = Path(os.environ.get(env_name, ROOT / "build" / default))
    if not path.exists():
        pytest.exit(f"{path} does not exist: build the project first (see README.md)", returncode=2)
    return path


@pytest.fixture(scope="session")
def edgeq_bin():
    return _binary("EDGEQ_BIN", "edgeq")


@pytest.fixture(scope="session")
def synth_bin():
    return _binary("EDGEQ_SYNTH_BIN", "edgeq-synth")


@pytest.fixture(scope="session")
def shared_data():
    path = Path(os.environ.get("EDGEQ_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set EDGEQ_SHARED_DATA)")
    return path


class Edgeq:
    def __init__(self, binary):
        self.binary = binary

    def run(self, *args, check=True, timeout=600):
        result = subprocess.run([str(self.binary), *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"edgeq {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def edgeq(edgeq_bin):
    return Edgeq(edgeq_bin)


def sanitizer_report(stderr):
    return "AddressSanitizer" in stderr or "runtime error:" in stderr or "LeakSanitizer" in stderr
