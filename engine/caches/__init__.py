"""Caches that attach to a model from outside (wrapped methods, attention processors, hooks), so the
models' forward() stays readable and every cache can be switched off."""
