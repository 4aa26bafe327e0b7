"""deploy/ (issue 19): the gunicorn config loads, the systemd units parse and run real commands of the
repository, and the nginx example sends what the app believes and nothing it does not."""
from __future__ import annotations

import getpass
import multiprocessing
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

from app import logs

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTALLED_AT = "/srv/threshold"  # where the examples expect the repository
UNITS = ["threshold-web.service", "threshold-worker.service"]
NGINX = (DEPLOY / "nginx-threshold.conf").read_text()
#: ProxyFix's counts and the header each one makes the app believe.
FORWARDED = {"x_for": "X-Forwarded-For", "x_proto": "X-Forwarded-Proto", "x_host": "X-Forwarded-Host",
             "x_port": "X-Forwarded-Port", "x_prefix": "X-Forwarded-Prefix"}


def _gunicorn_settings(monkeypatch, **env) -> dict:
    for key in ("GUNICORN_WORKERS", "GUNICORN_BIND", "GUNICORN_FORWARDED_ALLOW_IPS", "TRUSTED_PROXIES", "GUNICORN_ACCESS_LOG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def _nginx(directive: str) -> list[str]:
    return re.findall(rf"^\s*{directive}\s+([^;]+);", NGINX, flags=re.M)


def test_gunicorn_settings_follow_the_cores_and_the_trusted_proxies(monkeypatch):
    settings = _gunicorn_settings(monkeypatch)
    assert settings["workers"] == 2 * multiprocessing.cpu_count() + 1
    assert settings["forwarded_allow_ips"] == ""  # TRUSTED_PROXIES=0: no forwarded header is believed
    assert settings["accesslog"] is None  # the app writes the line per request
    assert "%({x-request-id}o)s" in settings["access_log_format"] and logs.HEADER.lower() == "x-request-id"
    settings = _gunicorn_settings(monkeypatch, TRUSTED_PROXIES="1", GUNICORN_WORKERS="3")
    assert settings["workers"] == 3 and settings["forwarded_allow_ips"] == "127.0.0.1,::1"
    settings = _gunicorn_settings(monkeypatch, TRUSTED_PROXIES="2", GUNICORN_FORWARDED_ALLOW_IPS="10.0.0.5")
    assert settings["forwarded_allow_ips"] == "10.0.0.5"


def test_gunicorn_accepts_the_config_and_loads_the_app():
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "--config", "deploy/gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _unit(name: str) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_the_units_run_commands_of_this_repository(app, name):
    service = _unit(name)["Service"]
    assert service["WorkingDirectory"] == INSTALLED_AT
    for key in ("ExecStartPre", "ExecStart"):
        argv = shlex.split(service[key])
        program = Path(argv[0].replace(INSTALLED_AT, str(ROOT)))
        assert program.is_file() and os.access(program, os.X_OK), argv[0]
        if program.name == "flask":
            assert argv[1:3] == ["--app", "wsgi"] and argv[3] in app.cli.commands, argv
        else:
            assert program.name == "gunicorn" and argv[-1] == "wsgi:app"
            assert (ROOT / argv[argv.index("--config") + 1]).is_file()
    assert shlex.split(service["ExecStartPre"])[3] == "check"  # a refused configuration never starts


@pytest.mark.parametrize("name", UNITS)
def test_systemd_accepts_the_units(tmp_path, name):
    """systemd's own parser, on a copy pointing at this checkout (it checks every Exec path)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the INI test above still runs)")
    text = (DEPLOY / name).read_text().replace(INSTALLED_AT, str(ROOT))
    text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")
    text = re.sub(r"^(User|Group)=.*$", f"User={getpass.getuser()}", text, flags=re.M)
    (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "Ignoring" not in result.stderr, result.stderr


def test_nginx_sends_exactly_the_forwarded_headers_the_app_believes(make_app):
    proxied = make_app(TRUSTED_PROXIES=1).wsgi_app
    believed = {header for attribute, header in FORWARDED.items() if getattr(proxied, attribute)}
    sent = dict(line.split(None, 1) for line in _nginx("proxy_set_header"))
    assert {header for header in sent if header.startswith("X-Forwarded-")} == believed == {"X-Forwarded-For", "X-Forwarded-Proto"}
    # the client's address appended (the app takes the last hop), the scheme, the browser's Host
    assert sent["X-Forwarded-For"] == "$proxy_add_x_forwarded_for" and sent["X-Forwarded-Proto"] == "$scheme"
    assert sent["Host"] == "$host"
    # one id per request, nginx's (32 hex digits), which the app keeps
    assert sent["X-Request-Id"] == "$request_id" and logs.WELL_FORMED.fullmatch("0123456789abcdef" * 2)
    # the env the comment asks for matches what the app reads
    assert re.search(r"TRUSTED_PROXIES=1\b", NGINX) and re.search(r"BASE_URL=https://threshold\.example\.org\b", NGINX)


def test_nginx_limits_and_paths_match_the_app_and_gunicorn(app, monkeypatch):
    [size] = _nginx("client_max_body_size")
    assert size == "6m" and 6 * 1024 * 1024 == app.config["MAX_CONTENT_LENGTH"]
    [static] = re.findall(r"location /static/ \{\s*alias ([^;]+);", NGINX)
    assert static.replace(INSTALLED_AT, str(ROOT)).rstrip("/") == app.static_folder and app.static_url_path == "/static"
    gunicorn = _gunicorn_settings(monkeypatch)
    [upstream] = re.findall(r"upstream threshold \{\s*server ([^;]+);", NGINX)
    assert upstream == gunicorn["bind"]
    [read_timeout] = _nginx("proxy_read_timeout")
    assert int(read_timeout.rstrip("s")) > gunicorn["timeout"] > app.config["STRIPE_TIMEOUT_SECONDS"]
    assert re.search(r"listen 443 ssl;", NGINX) and _nginx("ssl_certificate") and "return 301 https://$host$request_uri" in NGINX


def test_gunicorn_with_the_config_serves_the_app_and_logs_the_proxys_request_id(_schema, tmp_path):
    """The real thing: gunicorn started as the unit starts it, behind a (pretend) nginx on loopback."""
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "APP_", "FLASK_", "TRUSTED_", "BASE_"))}
    env.update(DATABASE_URL=_schema, TRUSTED_PROXIES="1", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1",
               BASE_URL=f"http://127.0.0.1:{port}", UPLOAD_FOLDER=str(tmp_path))
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                         headers={"X-Request-Id": "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b"})
        for _ in range(600):  # until it listens (a bound on the wait, not a speed assertion)
            try:
                response = urllib.request.urlopen(request, timeout=10)
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.1)
        assert response.status == 200 and response.headers[logs.HEADER] == "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b"
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert [line for line in lines if "threshold.requests:" in line][-1].split(" INFO ", 1)[1].startswith(
        "[3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b] threshold.requests: GET /healthz 200 ")
