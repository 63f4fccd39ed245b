"""Changing an endpoint: plan, steps, apply (blue/green, recreate, rollback), watch, sweep, fleet."""
