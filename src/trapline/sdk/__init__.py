"""What the browser SDK fetches besides capture: remote config, flags, extension scripts."""
