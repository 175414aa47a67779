"""Users: sign-up, sign-in, sign-out and ``/me``."""
