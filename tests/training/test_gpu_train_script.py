"""scripts/gpu_train.sh on the CPU (BACKEND=cpu): a run packed into parts and continued from them.

The script is how a long run advances through the short GPU loans (about 15 minutes each); CI
has no GPU, so its packing, unpacking and resuming are checked here with the CPU backend on the
embedded MNIST sample.
"""

import csv
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_train.sh"


def chunk(tmp_path, *options) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(tmp_path), "BACKEND": "cpu"}
    archive = tmp_path / "runs.tar.gz"
    cmd = ["bash", str(SCRIPT), "mnist-multi", "300", str(archive), *options]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


def epochs(tmp_path) -> list[int]:
    import tarfile

    parts = sorted(tmp_path.glob("runs.tar.gz.part*"))
    data = b"".join(p.read_bytes() for p in parts)
    (tmp_path / "joined.tar.gz").write_bytes(data)
    with tarfile.open(tmp_path / "joined.tar.gz") as tar:
        member = tar.extractfile("runs/mnist-multi/seed-0/metrics.csv")
        rows = list(csv.DictReader(line.decode() for line in member))
    return sorted({int(r["epoch"]) for r in rows if r["split"] == "test"})


def test_a_run_continues_from_the_parts_the_last_chunk_packed(tmp_path):
    options = ("--epochs", "2", "--data", "sample", "--seeds", "0")
    first = chunk(tmp_path, *options)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert (tmp_path / "runs.tar.gz.part00").is_file()
    assert epochs(tmp_path) == [0, 1, 2]
    summary = (tmp_path / "gpu_train.txt").read_text()
    assert summary.startswith("gpu_train: mnist-multi") and "status 0" in summary

    again = chunk(tmp_path, *options)  # the same options: the run resumes, nothing is redone
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resuming" in (tmp_path / "gpu_train.txt").read_text()
    assert epochs(tmp_path) == [0, 1, 2]

    other = chunk(tmp_path, "--epochs", "3", "--data", "sample", "--seeds", "0")
    assert other.returncode != 0  # other options are refused, and the parts are kept
    assert "refused" in (tmp_path / "gpu_train.txt").read_text()
    assert epochs(tmp_path) == [0, 1, 2]
