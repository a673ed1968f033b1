"""`artsim serve`, `sheet` and `map` (artsim.server.commands)."""

from __future__ import annotations

from PIL import Image


def test_cli_commands_registered(real_catalog, tmp_path):
    import typer
    from typer.testing import CliRunner

    from artsim.server.commands import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app)
    runner = CliRunner()
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "--host" in help_text and "127.0.0.1" in help_text and "--cors-origin" in help_text
    out = tmp_path / "sheet.png"
    r = runner.invoke(app, ["sheet", str(real_catalog), "img2.jpg", "-o", str(out), "-k", "3"])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] > 200
    html = tmp_path / "map.html"
    r = runner.invoke(app, ["map", str(real_catalog), "-o", str(html)])
    assert r.exit_code == 0, r.output
    assert "data:image/jpeg;base64," in html.read_text()


def test_serve_allowed_hosts_default_to_localhost_on_loopback():
    from artsim.server.commands import allowed_host_names

    assert {"localhost", "127.0.0.1", "::1"} <= set(allowed_host_names("127.0.0.1", None))
    assert "localhost" in allowed_host_names("::1", None)
    assert allowed_host_names("0.0.0.0", None) is None  # only the operator knows the public name
    assert allowed_host_names("0.0.0.0", ["art.example,www.art.example"]) == [
        "art.example", "www.art.example"]  # fmt: skip
    assert allowed_host_names("127.0.0.1", ["*"]) is None
