"""``python -m bounce_runtime``: the operator command (see ``bounce_runtime.cli``)."""

from bounce_runtime.cli import main

raise SystemExit(main())
