"""``python -m clawdesk`` runs the same command as ``clawdesk``."""

from ._launch import main

main()
