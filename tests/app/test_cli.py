"""`batscope serve` builds the documented `panel serve` command line: this machine only by
default, the room with one flag, and websocket origins that match the address served."""

import pytest
from batscope.app import cli
from batscope.app.cli import dask_scheduler_address, serve_command, websocket_origins


def _values(cmd, flag):
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


@pytest.fixture
def started(monkeypatch):
    """The ``(command, environment)`` of every server ``batscope serve`` starts (none runs)."""
    calls = []

    class Proc:
        def __init__(self, cmd, env=None):
            calls.append((cmd, env))

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", Proc)
    return calls


def test_serve_command_has_session_defaults():
    cmd = serve_command(port=5006, show=True)
    assert cmd[1:4] == ["-m", "panel", "serve"] and cmd[4].endswith("main.py")
    for flag in (
        "--liveness",
        "--unused-session-lifetime",
        "--check-unused-sessions",
        "--setup",
        "--show",
    ):
        assert flag in cmd
    assert _values(cmd, "--port") == ["5006"]
    assert "--setup" not in serve_command(warm=False)


def test_listens_on_this_machine_only_by_default():
    cmd = serve_command(port=5006)
    assert _values(cmd, "--address") == ["127.0.0.1"]
    # the page may be opened as localhost or as 127.0.0.1: both may open its websocket
    assert _values(cmd, "--allow-websocket-origin") == ["localhost:5006", "127.0.0.1:5006"]


def test_port_zero_is_resolved_so_origins_name_it():
    cmd = serve_command(port=0)
    (port,) = _values(cmd, "--port")
    assert int(port) > 0
    assert f"127.0.0.1:{port}" in _values(cmd, "--allow-websocket-origin")


def test_share_listens_everywhere_and_allows_the_lan_address(monkeypatch):
    monkeypatch.setattr(cli, "lan_address", lambda: "192.168.1.23")
    monkeypatch.setattr(cli.socket, "gethostname", lambda: "laptop")
    monkeypatch.setattr(cli.socket, "getfqdn", lambda: "laptop.lan")
    cmd = serve_command(port=5006, share=True, show=True)
    assert _values(cmd, "--address") == ["0.0.0.0"]
    assert _values(cmd, "--allow-websocket-origin") == [
        "localhost:5006",
        "127.0.0.1:5006",
        "192.168.1.23:5006",
        "laptop:5006",
        "laptop.lan:5006",
    ]
    assert "--show" not in cmd  # the LAN link is opened instead of 0.0.0.0
    assert cli.share_url(5006) == "http://192.168.1.23:5006/main"


def test_an_explicit_address_is_an_allowed_origin_and_extra_origins_are_kept():
    assert websocket_origins(80, "10.0.0.5", extra=["proxy.example:443"]) == [
        "localhost:80",
        "127.0.0.1:80",
        "10.0.0.5:80",
        "proxy.example:443",
    ]


def test_share_prints_the_link_to_share(monkeypatch, capsys, started):
    monkeypatch.setattr(cli, "lan_address", lambda: "192.168.1.23")

    assert cli.main(["serve", "--share", "--port", "5007", "--no-warm"]) == 0
    assert "share this link with the room: http://192.168.1.23:5007/main" in capsys.readouterr().out
    ((cmd, env),) = started
    assert _values(cmd, "--address") == ["0.0.0.0"]
    assert env["BOKEH_VALIDATE_DOC"] == "false"  # unless the user set it, or --dev


def test_document_checks_stay_for_dev_and_when_asked_for():
    assert cli.serve_env(dev=False, environ={})["BOKEH_VALIDATE_DOC"] == "false"
    assert "BOKEH_VALIDATE_DOC" not in cli.serve_env(dev=True, environ={})
    asked = {"BOKEH_VALIDATE_DOC": "true"}
    assert cli.serve_env(dev=False, environ=asked)["BOKEH_VALIDATE_DOC"] == "true"


def test_server_allocates_with_malloc_unless_told_otherwise():
    """A closed room's memory goes back to the system (``malloc_trim``), not kept in arenas."""
    assert cli.serve_env(environ={})["PYTHONMALLOC"] == "malloc"
    assert cli.serve_env(environ={"PYTHONMALLOC": "pymalloc"})["PYTHONMALLOC"] == "pymalloc"


def test_room_serves_the_instructor_page_behind_its_gate(monkeypatch, capsys, tmp_path, started):
    from batscope.app.room import TOKEN_ENV

    monkeypatch.setattr(cli, "lan_address", lambda: "192.168.1.23")

    argv = ["serve", "--room", "--port", "5008", "--no-warm", "--runs", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    ((cmd, env),) = started
    token = env[TOKEN_ENV]
    assert env["BATSCOPE_RUNS_DIR"] == str(tmp_path.resolve())  # beside the server's settings
    assert "participants: http://192.168.1.23:5008/main" in out
    assert f"instructor: http://192.168.1.23:5008/instructor?token={token}" in out
    assert len(token) >= 32 and all(token not in arg for arg in cmd)  # not on the command line
    assert [a for a in cmd if a.endswith(".py")][-2:] == [
        str(cli.HERE / "main.py"),
        str(cli.HERE / "instructor.py"),
    ]
    assert _values(cmd, "--plugins") == [
        "batscope.app.room_gate",
        "batscope.app.keep_alive",
        "batscope.app.static_gzip",
    ]
    assert _values(cmd, "--address") == ["0.0.0.0"]  # a room is shared
    assert "192.168.1.23:5008" in _values(cmd, "--allow-websocket-origin")
    assert _values(serve_command(share=True), "--plugins") == [
        "batscope.app.keep_alive",
        "batscope.app.static_gzip",
    ]


def test_serve_gives_the_server_its_data_and_runs_folders(monkeypatch, tmp_path, started):

    monkeypatch.delenv("BATSCOPE_ALLOW_DOWNLOAD", raising=False)
    argv = ["serve", "--no-warm", "--runs", str(tmp_path), "--data-dir", str(tmp_path / "d")]
    assert cli.main(argv) == 0
    assert started[0][1]["BATSCOPE_RUNS_DIR"] == str(tmp_path.resolve())
    assert started[0][1]["BATSCOPE_DATA_DIR"] == str((tmp_path / "d").resolve())
    assert "BATSCOPE_ALLOW_DOWNLOAD" not in started[0][1]  # off unless asked
    assert cli.main(["serve", "--no-warm", "--allow-download"]) == 0
    assert started[1][1]["BATSCOPE_ALLOW_DOWNLOAD"] == "1"


@pytest.mark.parametrize("argv", [["serve", "--port", "x"], ["nope"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        cli.main(argv)


def test_dask_scheduler_flag_names_the_servers_cluster(monkeypatch, started):

    monkeypatch.delenv("BATSCOPE_DASK_SCHEDULER", raising=False)
    argv = ["serve", "--no-warm", "--dask-scheduler", " tcp://head:8786 "]
    assert cli.main(argv) == 0
    assert started[0][1]["BATSCOPE_DASK_SCHEDULER"] == "tcp://head:8786"  # the server's setting
    assert cli.main(["serve", "--no-warm"]) == 0
    assert "BATSCOPE_DASK_SCHEDULER" not in started[1][1]
    for bad in ("", "tcp://a b:1"):
        with pytest.raises(ValueError, match="--dask-scheduler"):
            dask_scheduler_address(bad)
    with pytest.raises(SystemExit):
        cli.main(["serve", "--no-warm", "--dask-scheduler", " "])
