"""The serving API other areas call (deploy step, CLI) keeps its shape; importing it stays cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys


def test_endpoint_functions_keep_their_signatures():
    from kubepipe.components.serving import endpoints

    assert {"deploy_local", "list_endpoints", "stop_endpoint", "EndpointRolledBack"} <= set(endpoints.__all__)
    sig = inspect.signature(endpoints.deploy_local)
    params = sig.parameters
    assert list(params)[:2] == ["name", "model_dir"]
    for kw, default in {"port": None, "smoke_inputs": None, "state_dir": ".kubepipe", "timeout_s": 120}.items():
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY and params[kw].default == default
    assert list(inspect.signature(endpoints.stop_endpoint).parameters) == ["name", "state_dir"]
    from kubepipe.components.errors import GateFailed

    assert issubclass(endpoints.EndpointRolledBack, GateFailed)


def test_server_command_line_matches_the_inference_service_args():
    from kubepipe.components.serving.server import build_parser

    args = build_parser().parse_args(["/mnt/models", "--name", "m", "--host", "0.0.0.0", "--port", "8080"])
    assert (args.model_dir, args.name, args.host, args.port) == ("/mnt/models", "m", "0.0.0.0", 8080)
    assert args.max_batch_size == 64 and args.max_wait_ms == 2.0 and args.max_text_length == 512


def test_importing_endpoints_and_cli_pulls_in_no_heavy_library():
    code = ("import sys; import kubepipe.components.serving.endpoints, kubepipe.cli.serve; "
            "heavy = [m for m in ('torch', 'kserve', 'fastapi', 'httpx', 'pandas') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
