"""Serving runtime: `kubepipe serve` on the KServe ModelServer, micro-batching, local endpoints.

Heavy imports (kserve, torch) stay inside the modules that need them; importing this
package is cheap.
"""

__all__: list[str] = []
