"""The integration test app, synthesized once as integ-runner synthesizes a snapshot.

`pytest tests/integ --update-integ-snapshot` rewrites `integ_bounce_processor.py.snapshot/`
from this synthesis (the integ-runner releases on npm cannot read this aws-cdk-lib's cloud
assemblies yet: see tests/integ/README.md).
"""

from __future__ import annotations

import pytest
from integ.snapshot_helpers import (
    INTEG_RUNNER_ENV,
    SNAPSHOT_DIR,
    IntegApp,
    integ_runner_context,
    load_integ_app,
    templates_in,
    write_snapshot,
)

UPDATE_OPTION = "--update-integ-snapshot"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="rewrite tests/integ/integ_bounce_processor.py.snapshot from a fresh synthesis",
    )


@pytest.fixture(scope="session")
def integ_app(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> IntegApp:
    """The app with the placeholder domain, synthesized with integ-runner's context."""
    outdir = tmp_path_factory.mktemp("integ")
    module = load_integ_app()
    domain = module.PLACEHOLDER_DOMAIN
    with pytest.MonkeyPatch.context() as patch:
        for name, value in INTEG_RUNNER_ENV.items():
            patch.setenv(name, value)
        module.build_app(
            domain=domain,
            sender=f"{module.SENDER_LOCAL_PART}@{domain}",
            outdir=str(outdir),
            context=integ_runner_context(),
        ).synth()
    # The option exists when tests/integ is named on the command line (it has its own conftest).
    if pytestconfig.getoption(UPDATE_OPTION, default=False):
        write_snapshot(outdir, SNAPSHOT_DIR)
    return IntegApp(module, outdir, templates_in(outdir))
