"""Helpers shared by the tests: paths, the OpenAPI document, CLI runners wired to an emulator.

Imported as `support.<module>` (tests/ is on sys.path through tests/conftest.py), so a
test in any folder under tests/ reaches the same one copy.
"""
