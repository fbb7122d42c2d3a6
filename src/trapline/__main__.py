"""``python -m trapline``: the same command as the ``trapline`` console script."""

from trapline.cli import main

raise SystemExit(main())
