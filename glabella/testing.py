"""Test-only helpers that must be importable by settings overrides."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Still Argon2id, with tiny cost parameters so the test suite stays fast."""

    algorithm = "argon2"
    time_cost = 1
    memory_cost = 256
    parallelism = 1
