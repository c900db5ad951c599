"""``python -m avajams`` runs the command-line interface."""

from avajams.cli import main

raise SystemExit(main())
