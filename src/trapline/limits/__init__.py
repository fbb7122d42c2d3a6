"""Volume controls: a project's error tracking settings (rate limits, retention) and the
shared counters that enforce its rate limits."""
