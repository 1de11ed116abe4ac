"""Backends: one per kind of model, each speaking the Backend contract (engine.backends.base).

The bundled Kinemo models are one backend (bundled.py); diffusers video pipelines (catalog ids, hub ids,
local folders in diffusers layout) are the other (diffusers/). open_backend() picks one for a model.
"""
