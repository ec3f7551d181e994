"""kubepipe models list | show | history | promote | rollback — the model registry from the shell."""

from __future__ import annotations

from typing import Optional

import typer

from kubepipe.cli import console

__all__ = ["register"]

REGISTRY = typer.Option(
    "file://.kubepipe/registry", "--registry", "-r", envvar="KUBEPIPE_REGISTRY",
    help="Registry URI: file://path (relative to cwd), gs://bucket/path, or any fsspec URI.",
)
_SHOWN = ("accuracy", "f1_macro", "log_loss", "roc_auc")

models = typer.Typer(name="models", help="Model registry: versions, champion / previous, promotion history.",
                     no_args_is_help=True)


def _registry(uri: str):
    from kubepipe.components.registry import Registry

    return Registry(uri)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "" if v is None else str(v)


@models.command("list")
def list_(name: Optional[str] = typer.Argument(None, help="A model name; omit to list every model."),
          registry: str = REGISTRY) -> None:
    """List models, or the versions of one model (corrupt or unfinished versions included, marked)."""
    from rich.table import Table

    reg = _registry(registry)
    if name is None:
        table = Table("model", "versions", "champion", "previous", title=f"models in {reg.store.uri()}")
        for n in reg.names():
            vs = reg.versions(n)
            champ = next((v.version for v in vs if "champion" in v.aliases), None)
            prev = next((v.version for v in vs if "previous" in v.aliases), None)
            table.add_row(console.escape(n), str(len(vs)), _fmt(champ and f"v{champ}"), _fmt(prev and f"v{prev}"))
        if not table.rows:
            console.err.print(f"no models in {console.escape(reg.store.uri())}")
            return
        console.out.print(table)
        return
    vs = reg.versions(name)
    if not vs:
        from kubepipe.errors import UserError

        have = ", ".join(reg.names()) or "none"
        raise UserError(f"no versions of `{name}` in {reg.store.uri()} (models: {have}); check the name or --registry")
    table = Table("version", "aliases", "status", "created", "run", *_SHOWN, title=f"{name}")
    for v in vs:
        status = v.status if v.ok else f"[red]{v.status}[/red]"
        table.add_row(f"v{v.version}", ", ".join(v.aliases), status, v.created_at, console.escape(v.run_id),
                      *(_fmt(v.metrics.get(k)) for k in _SHOWN))
    console.out.print(table)
    for v in vs:
        if not v.ok:
            console.err.print(f"[yellow]warning:[/yellow] {console.escape(v.error or '')}", soft_wrap=True)


@models.command("show")
def show(name: str = typer.Argument(..., help="Model name."),
         version: str = typer.Argument("champion", help="Version number, `champion` or `previous`."),
         registry: str = REGISTRY) -> None:
    """Show one version: lineage, metrics, audit records and model card."""
    from rich.markdown import Markdown
    from rich.table import Table

    mv = _registry(registry).get(name, version)
    info = Table.grid(padding=(0, 2))
    for k, v in (("model", f"{mv.name} v{mv.version}"), ("aliases", ", ".join(mv.aliases) or "-"),
                 ("files", mv.model_uri), ("run", mv.run_id), ("data hash", mv.data_hash),
                 ("code", mv.code_version), ("created", f"{mv.created_at} by {mv.created_by}"),
                 ("gate", mv.metadata.get("decision", ""))):
        info.add_row(f"[bold]{k}[/bold]", console.escape(str(v)))
    console.out.print(info)
    metrics = Table("metric", "value", title="metrics")
    for k, v in sorted(mv.metrics.items()):
        if ":" not in k:
            metrics.add_row(k, _fmt(v))
    console.out.print(metrics)
    if mv.audit:
        audit = Table("action", "by", "at", "reason", title="audit")
        for a in mv.audit:
            audit.add_row(*(console.escape(str(a.get(k, ""))) for k in ("action", "by", "at", "reason")))
        console.out.print(audit)
    if mv.model_card:
        console.out.print(Markdown(mv.model_card))


@models.command("history")
def history(name: str = typer.Argument(..., help="Model name."), registry: str = REGISTRY) -> None:
    """Promotions and rollbacks, oldest first."""
    from rich.table import Table

    table = Table("gen", "action", "version", "from", "champion", "previous", "by", "at", "reason", title=f"{name} history")
    for h in _registry(registry).history(name):
        if "error" in h:
            table.add_row(str(h["generation"]), "[red]unreadable[/red]", "", "", "", "", "", "", console.escape(h["error"]))
            continue
        table.add_row(str(h["generation"]), h["action"], f"v{h['version']}", _fmt(h.get("from_version")),
                      _fmt(h["champion"]), _fmt(h["previous"]), console.escape(h["by"]), h["at"], console.escape(h["reason"]))
    console.out.print(table)


@models.command("promote")
def promote(name: str = typer.Argument(..., help="Model name."),
            version: str = typer.Argument(..., help="Version number to make champion."),
            reason: str = typer.Option(..., "--reason", help="Why (kept in the promotion history)."),
            registry: str = REGISTRY) -> None:
    """Make VERSION the champion; the old champion becomes `previous`."""
    reg = _registry(registry)
    before = reg.alias(name, "champion")
    mv = reg.promote(name, version, reason=reason)
    was = f" (was v{before.version})" if before and before.version != mv.version else ""
    console.out.print(f"[green]✓[/green] {console.escape(name)}: champion is v{mv.version}{was}")


@models.command("rollback")
def rollback(name: str = typer.Argument(..., help="Model name."),
             reason: str = typer.Option("rollback", "--reason", help="Why (kept in the promotion history)."),
             registry: str = REGISTRY) -> None:
    """Make `previous` the champion again."""
    mv = _registry(registry).rollback(name, reason=reason)
    console.out.print(f"[green]✓[/green] {console.escape(name)}: rolled back; champion is v{mv.version}")


def register(app: typer.Typer) -> None:
    app.add_typer(models, name="models")
