"""How `rtp check` cost grows with the number of pipes (run: python -m bench.check_scale)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generated_project import write_project


def main(sizes=(1, 50, 200), runs: int = 3) -> None:
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_project(Path(tmp), n)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, "-m", "rtp.cli.main", "check", "-p", root],
                                     capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if out.returncode != 0:
                    print(out.stdout, out.stderr)
                    raise SystemExit(f"check failed on {n} pipes")
            print(f"rtp check, {n:>4} pipes: best {min(times):.2f}s, "
                  f"median {sorted(times)[len(times) // 2]:.2f}s (whole process)")


if __name__ == "__main__":
    main()
