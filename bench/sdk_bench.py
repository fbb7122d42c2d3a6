"""What browsers cost besides their exceptions: remote config on every page view, and the
per-session signals capture records when autocapture controls have URL or event triggers.

Starts ``trapline serve`` (SQLite, one worker process) in a temporary folder and drives it
with wrk:

1. ``GET /array/<token>/config.js``: every page load asks for it (cached per token for 5 s);
2. ``POST /e/`` with one posthog-js ``$pageview`` per request, no controls: accepted, not kept;
3. the same with a URL trigger that matches every page: each request upserts its session's
   signal (10,000 sessions, so most requests repeat a known one).

    .venv/bin/python bench/sdk_bench.py [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TRAPLINE = str(Path(sys.executable).with_name("trapline"))

PAGEVIEW_LUA = """
local counter = 0
non200 = 0
function init(args)
  token = args[1]
  math.randomseed(os.time())
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local session = "session-" .. math.random(0, 9999)
  local body = string.format(
    '{"api_key":"%s","batch":[{"event":"$pageview","uuid":"0192c2a0-0000-7000-8000-%012x",' ..
    '"properties":{"distinct_id":"%s","$session_id":"%s","$lib":"web","$lib_version":"1.449.2",' ..
    '"$current_url":"https://shop.example.com/products/%d"}}]}',
    token, counter, session, session, math.random(0, 500))
  return wrk.format("POST", "/e/", nil, body)
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wrk(url: str, seconds: float, connections: int, script: Path | None = None, *args: str) -> tuple[float, str]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if args:
        command += ["--", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    p99 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("99%")), "?")
    non2xx = next((line for line in out.splitlines() if "Non-2xx" in line), "")
    return rate, f"p99 {p99}{'; ' + non2xx.strip() if non2xx else ''}"


def rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="trapline-sdk-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAPLINE_")}
    env.update(TRAPLINE_DATA_DIR=str(work / "data"), TRAPLINE_PORT=str(port), TRAPLINE_LOG_LEVEL="warning")
    made = subprocess.run(
        [TRAPLINE, "bootstrap", "--email", "b@example.com", "--password", "password123",
         "--organization", "Bench", "--project", "Web", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    creds = json.loads(made.stdout)
    token, key, project = creds["project_api_token"], creds["personal_api_key"], creds["project_id"]
    log = (work / "server.log").open("w")
    server = subprocess.Popen([TRAPLINE, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/_health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        script = work / "pageview.lua"
        script.write_text(PAGEVIEW_LUA)
        print(f"trapline sdk bench: {opts.duration:g}s per run, {opts.connections} connections, {os.cpu_count()} cores")

        rate, detail = wrk(f"{base}/array/{token}/config.js", opts.duration, opts.connections)
        print(f"  GET config.js                      {rate:9,.0f} req/s  ({detail})")
        rate, detail = wrk(base, opts.duration, opts.connections, script, token)
        print(f"  POST /e/ pageview, no controls     {rate:9,.0f} req/s  ({detail})")

        response = httpx.post(
            f"{base}/api/projects/{project}/error_tracking/autocapture_controls/",
            json={"url_triggers": [{"url": "^https://shop", "matching": "regex"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        response.raise_for_status()
        time.sleep(5.5)  # capture's controls cache
        rate, detail = wrk(base, opts.duration, opts.connections, script, token)
        with sqlite3.connect(work / "data" / "trapline.db") as db:
            (signals,) = db.execute("select count(*) from session_signal").fetchone()
        print(f"  POST /e/ pageview, URL trigger     {rate:9,.0f} req/s  ({detail}; {signals} sessions noted)")
        print(f"  RSS (server + worker)              {rss_mb(server.pid):9,.0f} MB")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
