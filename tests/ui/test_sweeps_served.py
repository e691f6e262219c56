"""The Sweeps tab in the browser: a sweep submitted to a real Dask cluster (2 worker processes)
named by the server's BATSCOPE_DASK_SCHEDULER, its cells filling in, the dashboard linked; and
"use cluster" off, with its reason, on a server without one."""

import csv
import re

import pytest

pytest.importorskip("playwright")
pytest.importorskip("distributed")

from batscope.training.sweep_cluster import close_client, open_client  # noqa: E402

from .conftest import click, open_app, open_card, set_input, shot, wait_until  # noqa: E402
from .test_training import newest_app, open_tab  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (1 thread each), closed after the module."""
    client = open_client(2, workers=2)
    assert len(client.scheduler_info()["workers"]) == 2
    yield client
    close_client(client)


def status_text(page) -> str:
    return "\n".join(page.locator(".grid-sweep-status p").all_inner_texts())


def test_a_sweep_from_the_panel_runs_on_the_cluster(
    served, guarded, cluster, monkeypatch, tmp_path
):
    monkeypatch.setenv("BATSCOPE_DASK_SCHEDULER", cluster.scheduler.address)
    monkeypatch.setenv("BATSCOPE_SWEEP_DIR", str(tmp_path))
    n = len(served.apps)
    page = open_app(guarded, served.url)
    app = newest_app(served, n)
    open_card(page, "Training")
    set_input(page, "epochs", 100)  # a second or so a run: the cells fill one by one
    wait_until(lambda: app.training.epochs == 100)
    open_tab(page, "Sweeps")
    page.locator(".grid-sweep-status p").first.wait_for(timeout=30_000)
    toggle = page.locator(".use-cluster input").first
    assert toggle.is_checked() and toggle.is_enabled()  # the server names a cluster
    set_input(page, "x_values", "0.05, 0.1")
    set_input(page, "seeds", "0-2")
    wait_until(lambda: app.grid_sweep.seeds == "0-2" and app.grid_sweep.x_values == "0.05, 0.1")
    click(page, "Start sweep")
    seen = set()

    def progress():
        m = re.search(r"runs (\d)/6", status_text(page))
        if m:
            seen.add(int(m.group(1)))
        return "finished" in status_text(page)

    wait_until(progress, timeout=300, interval=0.1)
    assert app.grid_sweep.status == "finished" and app.grid_sweep.on_cluster
    assert seen - {0, 6}, f"no cell filled before the last: {sorted(seen)}"
    link = page.locator("a.dask-dashboard").first
    assert link.get_attribute("href") == cluster.dashboard_link
    assert link.get_attribute("href").startswith("http")
    rows = page.locator(".grid-sweep-table tbody tr")
    wait_until(lambda: rows.count() == 6)
    assert all("trained" in row for row in rows.all_inner_texts())
    grid = app.views["sweeps"]._grid(app.grid_sweep.plan)
    assert len(grid["accuracy"]) == 6 and all(0 <= a <= 100 for a in grid["accuracy"])
    # the runs were tasks of the cluster's workers, and wrote the sweep's summary
    keys = cluster.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert any(k.startswith("run-config") for k in keys), keys
    folder = tmp_path / app.grid_sweep.folder
    with open(folder / "summary.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["trained"] * 6
    shot(page, "sweeps-on-cluster")
    assert guarded.errors == []


def test_use_cluster_is_off_and_explained_without_a_scheduler(served, guarded, monkeypatch):
    monkeypatch.delenv("BATSCOPE_DASK_SCHEDULER", raising=False)
    n = len(served.apps)
    page = open_app(guarded, served.url)
    app = newest_app(served, n)
    open_tab(page, "Sweeps")
    page.locator(".grid-sweep-status p").first.wait_for(timeout=30_000)
    toggle = page.locator(".use-cluster input").first
    assert not toggle.is_checked() and not toggle.is_enabled()
    notes = page.locator(".cluster-note p")  # drawn a moment after the tab
    note = wait_until(lambda: " ".join(notes.all_inner_texts()), timeout=30)
    assert "No Dask cluster is configured" in note and "--dask-scheduler" in note
    assert not app.cluster.on_cluster
    assert guarded.errors == []
