"""CPU time to read a stored message's header block (only when SES truncated the headers).

``parse_raw_headers`` on blocks of 12 KB (just past SES's 10 KB truncation), 30 KB (400
``Received`` lines and an obsolete ``X-Mailer : x``), and the 1 MiB cap
(``HEADER_BLOCK_MAX_BYTES``) as short lines, as one field folded over 1 MiB, and as the shortest
fields (the worst case). CPU time is ``time.process_time`` with the garbage collector paused; the
figure is the best of ``--repeats`` passes.

    python bench/header_block.py [--repeats 5]

Targets: <= 2 ms for 30 KB; <= 100 ms for 1 MiB (the stdlib ``email`` parser that read the block
in 0.3.0 took about 120 ms for 1 MiB on the same machine, and stopped early at ``X-Mailer : x``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from _common import target, use_repo_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    use_repo_paths()
    from bounce_runtime.contract import HEADER_BLOCK_MAX_BYTES as CAP
    from bounce_runtime.core.headers import parse_raw_headers

    received = b"Received: from relay.example.net by mx.example.com; Fri, 11 Sep 2015\r\n"

    def lines(size: int) -> bytes:
        return received * (size // len(received))

    cases = {
        "12 KB": (lines(12_000) + b"\r\nbody", None),
        "30 KB, X-Mailer : x": (
            received * 400 + b"X-Mailer : x\r\nAuto-Submitted: yes\r\n\r\nbody",
            2.0,
        ),
        "1 MiB of lines (the cap)": (lines(CAP) + b"X: y\r\n", 100.0),
        "1 MiB folded into one field": (
            b"Received: a\r\n" + b"\tfrom x by y with z;\r\n" * (CAP // 23) + b"\r\n",
            100.0,
        ),
        # The worst case found: the cap filled with the shortest fields (0.3.0's parser: ~1 s).
        "1 MiB of 4-byte fields (a:b LF)": (b"a:b\n" * (CAP // 4), None),
    }
    met = True
    for label, (raw, limit) in cases.items():
        times = []
        for _ in range(args.repeats + 1):  # the first pass warms up
            gc.disable()
            start = time.process_time()
            parse_raw_headers(raw)
            times.append(time.process_time() - start)
            gc.enable()
        best_ms = min(times[1:]) * 1000
        print(f"{label}: {best_ms:.2f} ms CPU ({len(raw):,} bytes)")
        if limit is not None:
            met = target(label, best_ms, limit, "ms") and met
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
