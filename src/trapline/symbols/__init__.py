"""Symbol sets (uploaded source maps) and the stack frames resolved with them."""
