"""ClawDesk."""
