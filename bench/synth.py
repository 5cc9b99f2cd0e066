"""Synthesis time of the example app against an app holding one empty stack, as a ratio.

Both are synthesized in one Python process, after a warm-up synth that pays jsii's start-up
(about 2 s, the same for any CDK app), alternating the two apps `--runs` times into fresh output
directories; the figures are medians.

    python bench/synth.py [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable

import aws_cdk as cdk
from _common import median, use_repo_paths


def empty_app(outdir: str) -> cdk.App:
    """An app holding one empty stack in the example's environment."""
    app = cdk.App(outdir=outdir)
    stack = cdk.Stack(app, "Empty", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    cdk.Validations.of(stack).acknowledge(
        cdk.Acknowledgment(id="CloudFormation-Validate::F0001", reason="empty on purpose")
    )
    return app


def synth_seconds(build: Callable[[str], cdk.App]) -> float:
    """Seconds to build and synthesize one app into a fresh directory."""
    with tempfile.TemporaryDirectory() as outdir:
        start = time.perf_counter()
        build(outdir).synth()
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="synths of each app")
    args = parser.parse_args()
    use_repo_paths()
    from app import build_app

    start = time.perf_counter()
    synth_seconds(empty_app)
    warm_up = time.perf_counter() - start
    empty: list[float] = []
    example: list[float] = []
    for _ in range(args.runs):
        empty.append(synth_seconds(empty_app))
        example.append(synth_seconds(lambda outdir: build_app(outdir=outdir)))
    print(f"synth (one process, after a {warm_up:.2f} s warm-up synth; medians of {args.runs})")
    print(f"  empty stack:  {median(empty) * 1000:8.1f} ms")
    print(f"  example app:  {median(example) * 1000:8.1f} ms")
    print(f"  ratio example / empty: {median(example) / median(empty):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
