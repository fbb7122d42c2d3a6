"""Exception processing stages; the order they run in is written here."""
