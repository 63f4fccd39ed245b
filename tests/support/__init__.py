"""Helpers shared by the tests: CLI runner, sandbox shortcuts, update scenarios, fake builders."""
