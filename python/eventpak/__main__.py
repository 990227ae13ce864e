"""``python -m eventpak``: see :mod:`eventpak.cli`."""

from .cli import main

raise SystemExit(main())
