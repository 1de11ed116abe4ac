"""Tiny random-weight diffusers pipelines built from configs, saved in diffusers layout (nothing downloaded)."""
