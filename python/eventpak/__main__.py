"""``python -m eventpak``: see :mod:`eventpak.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m eventpak"))
