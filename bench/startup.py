"""Start-up time and memory of `deeplocal serve` on the bundled model, for a given set of serve flags.

    python bench/startup.py                                 # the defaults (32768 KV cells)
    python bench/startup.py --n-ctx 8192                    # any `deeplocal serve` flags

Prints seconds from the process start to the URL announcement and to `/ready` answering 200, and the
server's resident memory once ready (psutil). One thread (`--threads 1`), port 0, run from a temporary
directory so no deeplocal.yaml is picked up.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time

import httpx
import psutil


def main(serve_args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "deeplocal", "serve", "--port", "0", "--threads", "1",
                                 *serve_args], stderr=subprocess.PIPE, text=True, cwd=workdir)
        try:
            assert proc.stderr is not None
            url = None
            for line in proc.stderr:
                found = re.search(r"on (http://\S+)/v1", line)
                if found:
                    url = found.group(1)
                    break
            if url is None:
                print("deeplocal serve exited before announcing its URL", file=sys.stderr)
                return 1
            announced = time.monotonic() - t0
            while True:
                try:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            ready = time.monotonic() - t0
            rss_mib = psutil.Process(proc.pid).memory_info().rss / 2**20
            print(f"serve {' '.join(serve_args) or '(defaults)'}: URL after {announced:.2f} s, ready after "
                  f"{ready:.2f} s, RSS {rss_mib:.0f} MiB")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
