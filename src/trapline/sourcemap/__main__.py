"""``python -m trapline.sourcemap``: the client alone, without reading Trapline's server settings."""

from trapline.sourcemap.command import main

raise SystemExit(main())
