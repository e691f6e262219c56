"""`batscope serve` builds the documented `panel serve` command line."""

from batscope.app.cli import serve_command


def test_serve_command_has_session_defaults():
    cmd = serve_command(port=0, show=True)
    assert cmd[1:4] == ["-m", "panel", "serve"] and cmd[4].endswith("main.py")
    for flag in (
        "--liveness",
        "--unused-session-lifetime",
        "--check-unused-sessions",
        "--setup",
        "--show",
    ):
        assert flag in cmd
    assert cmd[cmd.index("--port") + 1] == "0"
    assert "--setup" not in serve_command(warm=False)
