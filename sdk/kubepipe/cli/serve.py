"""kubepipe serve MODEL_DIR | kubepipe endpoints list | stop NAME | predict NAME TEXT... — serving from the shell."""

from __future__ import annotations

from typing import List

import typer

from kubepipe.cli import console

__all__ = ["register"]

STATE = typer.Option(".kubepipe", "--state-dir", help="Where endpoint records live (<state-dir>/endpoints).")

endpoints = typer.Typer(name="endpoints", help="Local model endpoints started by deploy steps.",
                        no_args_is_help=True)


def serve(
    model_dir: str = typer.Argument(..., help="A Model artifact directory (the output of a train step)."),
    name: str = typer.Option("model", "--name", help="Model name in the URLs: /v1/models/NAME:predict."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 in a container."),
    port: int = typer.Option(8080, "--port"),
    max_batch_size: int = typer.Option(64, "--max-batch-size", help="Rows per forward pass and per request."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", help="How long a pass waits to fill up."),
    max_text_length: int = typer.Option(512, "--max-text-length", help="Characters per text instance."),
    workers: int = typer.Option(1, "--workers", help="Server processes sharing the port."),
    grace_period: int = typer.Option(30, "--grace-period", help="Seconds to drain requests on SIGTERM."),
    drain_delay: float = typer.Option(0.0, "--drain-delay", help="Seconds to keep accepting, unready, after SIGTERM."),
    torch_threads: int = typer.Option(1, "--torch-threads", help="torch intra-op threads per worker."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (cuda when available)."),
    forward_thread: str = typer.Option("auto", "--forward-thread",
                                       help="Forward passes on their own thread: auto (when a pass takes > 2 ms), on, off."),
    allow_user_model: bool = typer.Option(False, "--allow-user-model",
                                          help="Load a user model class (`package.module:Class`) named by the "
                                               "artifact: imports that module, so only for artifacts you trust."),
) -> None:
    """Serve a model on the KServe ModelServer: REST V1 + Open Inference Protocol V2, /metrics.

    Ready (GET /v2/models/NAME/ready = 200) only after the model loaded and passed a warm-up.
    """
    from pathlib import Path

    from kubepipe.errors import UserError

    if not Path(model_dir).is_dir():
        raise UserError(f"{model_dir}: not a directory; pass a Model artifact directory (model.safetensors + "
                        "kubepipe-model.json)")
    for flag, value in (("--max-batch-size", max_batch_size), ("--workers", workers), ("--port", port)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1 (got {value})")
    argv = [model_dir, "--name", name, "--host", host, "--port", str(port), "--max-batch-size", str(max_batch_size),
            "--max-wait-ms", str(max_wait_ms), "--max-text-length", str(max_text_length),
            "--grace-period", str(grace_period), "--workers", str(workers), "--drain-delay", str(drain_delay),
            "--torch-threads", str(torch_threads), "--device", device, "--forward-thread", forward_thread]
    if allow_user_model:
        argv.append("--allow-user-model")
    from kubepipe.components.serving.server import main

    code = main(argv)
    if code:
        raise typer.Exit(code)


@endpoints.command("list")
def list_(state_dir: str = STATE) -> None:
    """List local endpoints: URL, model, status (up / unready / down) and pids."""
    from rich.table import Table

    from kubepipe.components.serving.endpoints import list_endpoints

    rows = list_endpoints(state_dir)
    if not rows:
        console.err.print(f"no local endpoints in {console.escape(state_dir)}/endpoints")
        return
    table = Table("name", "url", "status", "model", "pids")
    for r in rows:
        color = {"up": "green", "unready": "yellow"}.get(r["status"], "red")
        table.add_row(console.escape(r["name"]), console.escape(str(r["url"])), f"[{color}]{r['status']}[/{color}]",
                      console.escape(r["model_dir"]), f"{r['pids']['proxy']}, {r['pids']['backend']}")
    console.out.print(table)
    for r in rows:
        if r.get("error"):
            console.err.print(f"[yellow]warning:[/yellow] {console.escape(str(r['error']))}")


@endpoints.command("stop")
def stop(name: str = typer.Argument(...), state_dir: str = STATE) -> None:
    """Stop a local endpoint (only the processes recorded for it) and forget it."""
    from kubepipe.components.serving.endpoints import stop_endpoint

    out = stop_endpoint(name, state_dir)
    console.out.print(f"stopped endpoint {console.escape(name)} (pids {', '.join(map(str, out['stopped'])) or 'none'})")


@endpoints.command("predict")
def predict(name: str = typer.Argument(...), texts: List[str] = typer.Argument(..., help="Texts to classify."),
            state_dir: str = STATE) -> None:
    """Send texts to a local endpoint and print label and probability per text."""
    from kubepipe.components.serving.endpoints import predict_endpoint

    body = predict_endpoint(name, list(texts), state_dir)
    for text, pred in zip(texts, body.get("predictions", [])):
        console.out.print(f"{pred['label']}\t{pred['probability']:.4f}\t{console.escape(text)}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(endpoints)
