"""Shared CNN core: small named blocks, model builders made of them, and weight loaders kept
apart from the modules they fill (timm's split)."""

from faceid.nn.registry import available_models, get_model

__all__ = ["available_models", "get_model"]
