"""Compiler layer: plan + target -> @dsl.pipeline built in code -> kfp Compiler -> IR YAML."""

from kubepipe.compiler.output import Compiled, compile_plan, strip_header

__all__ = ["Compiled", "compile_plan", "strip_header"]
