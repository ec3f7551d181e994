"""Catalog layer: components by built-in name, package.module:function, or KFP YAML file."""

from kubepipe.catalog.ports import CONTEXT_INPUTS, Port, compatible, literal_fits
from kubepipe.catalog.resolve import CatalogError, ComponentInfo, builtin_names, resolve_component

__all__ = ["CONTEXT_INPUTS", "Port", "compatible", "literal_fits", "CatalogError", "ComponentInfo", "builtin_names",
           "resolve_component"]
