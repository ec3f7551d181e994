"""kubepipe models list | show | verify | history | promote | rollback | gc — the model registry from the shell."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import PROFILE, SET, VersionCommand, given_location, minutes
from kubepipe.cli.output import FORMAT, HOME, Format
from kubepipe.errors import printable
from kubepipe.json_values import NOT_FINITE_TEXT

__all__ = ["register"]

REGISTRY = typer.Option(
    None, "--registry", "-r", envvar="KUBEPIPE_REGISTRY", parser=given_location,
    help="Registry URI: file://path (relative to cwd), gs://bucket/path, or any fsspec URI "
         "(default: the local profile's registry_uri, where local runs register: file://<home>/registry unless "
         "the nearest configs/local.yaml above the working directory names another).",
)
_SHOWN = (("accuracy", "f1_macro", "log_loss", "roc_auc"),  # a classifier's columns
          ("recall@5", "recall@10", "mrr@10", "ndcg@10"))  # a retrieval index's (evaluate-retrieval)
MOVE_TARGET = typer.Option(
    None, "--target", "-t", help="Read the target's profile (--profile FILE, else the nearest "
    "configs/<target>.yaml above the working directory): its registry_uri, and with "
    "`vertex_model_registry: true` the move is mirrored onto Vertex AI Model Registry.")

models = typer.Typer(name="models", help="Model registry: versions, champion / previous, promotion history.",
                     no_args_is_help=True)


def _registry(uri: Optional[str], home: Path):
    """--registry / KUBEPIPE_REGISTRY, else the local profile's registry_uri: where a local run's register-model put
    its versions (configs/local.yaml may name one outside the home), as `runs prune` reads it."""
    from kubepipe.listings import registry_at

    return registry_at(uri, output.home_path(home), _given_as(uri) if uri is not None else "")


def _given_as(uri: str) -> str:
    """Which gave the registry URI: the --registry flag or its environment variable."""
    import os

    return "KUBEPIPE_REGISTRY" if os.environ.get("KUBEPIPE_REGISTRY") == uri else "--registry"


def _moving_registry(uri: Optional[str], home: Path, target: Optional[str], profile: Optional[Path],
                     sets: Optional[list[str]]):
    """The registry a promote / rollback goes through: `open_registry`, as register-model and deploy use it.
    The URI's sources, in order: the command line (--registry, --set registry_uri), KUBEPIPE_REGISTRY, the profile
    file; a --registry and a --set naming two registries, or KUBEPIPE_REGISTRY / --registry naming another one than
    the profile file's (where the target's runs register and deploy), are refused."""
    if target is None and profile is None and not sets:
        return _registry(uri, home)
    from kubepipe.api import load_target
    from kubepipe.components.registry import open_registry
    from kubepipe.errors import UserError

    prof = load_target(target or "local", profile=profile, sets=sets, home=home)
    chosen, source = prof.registry_uri, prof.source_of("registry_uri")
    if uri and "registry_uri" not in prof.model_fields_set:  # the target's default: the one given wins
        chosen, source = uri, _given_as(uri)
    elif uri and uri.rstrip("/") != prof.registry_uri.rstrip("/"):
        given, on_line = _given_as(uri), source.startswith("--set ")
        if on_line and given == "KUBEPIPE_REGISTRY":  # the command line wins over the environment, said
            console.warn(f"moving in {prof.registry_uri} ({source}), not in KUBEPIPE_REGISTRY's {uri}: the command "
                         "line wins over the environment")
        elif on_line:
            raise UserError(f"--registry names the registry {uri}, but {source} names {prof.registry_uri}: "
                            "give one of them")
        else:
            # was moved in --registry's (KUBEPIPE_REGISTRY's, exported for local work) and mirrored onto Vertex from
            # there, or refused as 'needs a gs:// registry_uri ..., got file://...', naming neither source
            raise UserError(f"{given} names the registry {uri}, but the {prof.target} profile's registry_uri is "
                            f"{prof.registry_uri} (where its runs register and deploy): a move must be made in one; "
                            f"drop {given} to move in the profile's, or give --set registry_uri=URI")
    elif uri:
        source = _given_as(uri)
    return open_registry(chosen, prof.public_dict(), source=source)


def _fmt(v) -> str:
    """A metric as the tables show it: 4 decimals, a whole number as one (a count was `300.0000`), a small one in
    3 significant digits (a learning rate 1e-05 was `0.0000`), a huge one in 4, float or int (1e300 was printed as
    301 digits, and 10**400 as 401)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**15:
        return _huge(v)
    if not isinstance(v, float):
        return "" if v is None else str(v)
    if not math.isfinite(v):  # an undefined metric: --format json's null
        return NOT_FINITE_TEXT
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.3g}" if 0 < abs(v) < 1e-3 else _huge(v) if abs(v) >= 1e15 else f"{v:.4f}"


def _huge(v: int | float) -> str:
    """4 significant digits, as `.4g` writes them; an int past a float's range (`.4g` raised OverflowError) alike."""
    try:
        return f"{v:.4g}"
    except OverflowError:
        from decimal import Decimal

        mantissa, exponent = f"{Decimal(v):.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{exponent}"


def _v(n) -> str:
    """A version number as the tables show it (`v3`); "" for none."""
    return "" if n is None else f"v{n}"


@models.command("list")
def list_(name: Optional[str] = typer.Argument(None, help="A model name; omit to list every model."),
          registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """List models, or the versions of one model (corrupt versions marked). Incomplete versions (a registration
    that died, or one still copying) are left out, and said on stderr with how `models gc` removes them."""
    from kubepipe.listings import model_list, model_version_list

    reg = _registry(registry, home)
    if name is None:
        body = model_list(reg)  # kubepipe.list_models: the same records
        items = body["items"]
        for i in items:
            _skipped_note(i["name"], i["incomplete"])
        if output.is_json(fmt):
            output.emit("ModelList", dict(body))
            return
        if not items:
            console.err.print(console.escape(f"no models in {reg.store.uri()}{_nothing_there(reg, registry, home)}"))
            return
        output.table(("model", "versions", "champion", "previous"),
                     [(i["name"], i["versions"], i["champion"] and f"v{i['champion']}",
                       i["previous"] and f"v{i['previous']}") for i in items], title=f"models in {reg.store.uri()}")
        return
    versions = model_version_list(reg, name)  # kubepipe.list_model_versions: the same records
    vs = versions["items"]
    _skipped_note(name, versions["incomplete"])
    for v in vs:
        if v["status"] != "ok":
            console.warn(v["error"] or "")
    if output.is_json(fmt):
        output.emit("ModelVersionList", dict(versions))
        return
    shown = _shown(vs)
    output.table(("version", "aliases", "status", "created", "run", *shown),
                 [(f"v{v['version']}", ", ".join(v["aliases"]),
                   output.Styled(v["status"], "" if v["status"] == "ok" else "red"), v["created_at"], v["run_id"],
                   *(_metric(v["metrics"], k) for k in shown)) for v in vs], title=name)


def _metric(metrics: dict, key: str) -> str:
    """A version's metric as the table shows it: an undefined one (null in the record: NaN registered) `n/a`."""
    if key in metrics and metrics[key] is None:
        return NOT_FINITE_TEXT
    return _fmt(metrics.get(key))


def _nothing_there(reg, given: Optional[str], home: Path) -> str:
    """Why a registry holds nothing, if it is a mistake: a model's folder given, one that does not exist, or the
    default one in a home that does not exist (a misspelt --home, as `runs list` says)."""
    from kubepipe.components.registry.listing import model_folder_hint

    if reg.is_model_folder():
        return f"; {model_folder_hint(reg.store.source)}"
    if given and not reg.store.exists(""):  # given, not the default a first run creates
        return f": it does not exist (a typo in {reg.store.source}?)"
    if not given and Path(reg.store.uri()).is_relative_to(Path(home).resolve()):
        return output.missing_home(home, "`kubepipe run`")
    return ""


def _skipped_note(name: str, skipped: list[int]) -> None:
    if skipped:
        console.warn(f"model `{name}`: {len(skipped)} incomplete version{'s' if len(skipped) > 1 else ''} left out "
                     f"({', '.join(f'v{n}' for n in skipped)}: a registration that died, or one still copying); "
                     f"`kubepipe models gc {name}` (same --registry) removes those older than its --older-than "
                     "(default 60 min)")


def _shown(versions) -> tuple:
    """The metric columns of `models list NAME`: each kind's whose metrics some version holds (a classifier's
    when none does)."""
    held = {k for v in versions for k in v["metrics"]}
    return tuple(k for kind in _SHOWN if held & set(kind) for k in kind) or _SHOWN[0]


@models.command("show", cls=VersionCommand)
def show(name: str = typer.Argument(..., help="Model name."),
         version: str = typer.Argument("champion", help="Version number, `champion` or `previous`."),
         registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Show one version: lineage, metrics, audit records and model card."""
    mv = _registry(registry, home).get(name, version)
    if output.is_json(fmt):
        output.emit("ModelVersion", mv.to_dict())
        return
    output.fields([("model", f"{mv.name} v{mv.version}"), ("aliases", ", ".join(mv.aliases)),
                   ("files", mv.model_uri), ("run", mv.run_id), ("data hash", mv.data_hash),
                   ("code", mv.code_version), ("created", f"{mv.created_at} by {mv.created_by}"),
                   ("gate", mv.metadata.get("decision", ""))])
    output.table(("metric", "value"), [(k, _fmt(v)) for k, v in sorted(mv.metrics.items()) if ":" not in k],
                 title="metrics")
    if mv.audit:
        output.table(("action", "by", "at", "reason"),
                     [tuple(str(a.get(k, "")) for k in ("action", "by", "at", "reason")) for a in mv.audit],
                     title="audit")
    if mv.model_card:
        if console.out.is_terminal:
            from rich.markdown import Markdown

            console.out.print(Markdown(printable(mv.model_card)))
        else:
            console.out.file.write(printable(mv.model_card.rstrip("\n")) + "\n")


@models.command("verify", cls=VersionCommand)
def verify(name: str = typer.Argument(..., help="Model name."),
           version: Optional[str] = typer.Argument(
               None, help="Version number, `champion` or `previous` (default: every version)."),
           registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Check versions' files against the sha256s recorded at registration; exits 1 naming any that changed."""
    reg = _registry(registry, home)
    if version is not None:
        results = [reg.verify(name, version)]
    else:  # all but those still being registered; a corrupt one was skipped: 'intact', exit 0, hashes unreadable
        results = [reg.verify(name, v.version) if v.ok else
                   {"version": v.version, "path": v.model_uri, "changed": [], "missing": [], "added": [],
                    "error": v.error}
                   for v in reg.versions(name, known=True) if v.status != "incomplete"]
    for r in results:
        r["intact"] = not (r["changed"] or r["missing"] or r["added"] or r.get("error"))
    if output.is_json(fmt):
        output.emit("ModelVerify", {"registry": reg.store.uri(), "model": name, "versions": results, "intact": all(r["intact"] for r in results)})
    else:
        output.table(("version", "files", "changed / missing / added"),
                     [(f"v{r['version']}", "intact" if r["intact"] else
                       output.Styled("CORRUPT" if r.get("error") else "CHANGED", "bold red"),
                       "; ".join(f"{k}: {', '.join(r[k])}" for k in ("changed", "missing", "added") if r[k]))
                      for r in results], title=name)
    for r in results:  # each damaged version with where it is (was 'starter: files changed', no version, no path)
        if r["changed"] or r["missing"] or r["added"]:
            console.err.print(f"[red]error:[/red] {console.escape(name)} v{r['version']}: files changed after "
                              f"registration in {console.escape(r['path'])}; serving and evaluation refuse them: "
                              "register the model again", soft_wrap=True)
        elif r.get("error"):
            console.err.print(f"[red]error:[/red] {console.escape(r['error'])}", soft_wrap=True)
    if not all(r["intact"] for r in results):
        raise typer.Exit(1)


@models.command("history")
def history(name: str = typer.Argument(..., help="Model name."), registry: Optional[str] = REGISTRY,
            home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Promotions and rollbacks, oldest first."""
    reg = _registry(registry, home)
    items = reg.history(name)
    if output.is_json(fmt):  # `registry`, as `models list` has: which registry answered (KUBEPIPE_REGISTRY?)
        output.emit("ModelHistory", {"registry": reg.store.uri(), "name": name, "items": items})
        return
    if not items:  # was a table of headers only, as if the history could not be read
        console.err.print(f"model `{console.escape(name)}` has no promotions or rollbacks yet: kubepipe models promote "
                          f"{console.escape(name)} VERSION --reason ... (or a deploy, or register-model with "
                          "`promote: true`) makes the first", soft_wrap=True)
        return
    rows = []
    for h in items:
        if "error" in h:
            rows.append((h["generation"], output.Styled("unreadable", "red"), "", "", "", "", "", "", h["error"]))
            continue
        # versions as `v2`, as `models list` shows them (from / champion / previous were bare numbers beside it);
        # none for a decision about no version (record_event): was shown as 'vNone'
        rows.append((h["generation"], h["action"], *(_v(h.get(k)) for k in ("version", "from_version", "champion",
                                                                              "previous")),
                     h["by"], h["at"], h["reason"]))
    output.table(("gen", "action", "version", "from", "champion", "previous", "by", "at", "reason"), rows,
                 title=f"{name} history")


@models.command("promote", cls=VersionCommand)
def promote(name: str = typer.Argument(..., help="Model name."),
            version: str = typer.Argument(..., help="Version to make champion: its number (from 1: 3 or v3) or "
                                                    "`previous` (`kubepipe models list NAME` lists them)."),
            reason: str = typer.Option(..., "--reason", help="Why (kept in the promotion history)."),
            registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT,
            target: Optional[str] = MOVE_TARGET, profile: Optional[Path] = PROFILE,
            set_: Optional[list[str]] = SET) -> None:
    """Make VERSION the champion; the old champion becomes `previous`."""
    reg = _moving_registry(registry, home, target, profile, set_)
    mv = reg.promote(name, version, reason=reason)
    _moved(fmt, reg.store.uri(), "promote", name, mv.version, reg.replaced)
    _stale_endpoints(home, name, mv)


@models.command("rollback")
def rollback(name: str = typer.Argument(..., help="Model name."),
             reason: str = typer.Option("rollback", "--reason", help="Why (kept in the promotion history)."),
             registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT,
             target: Optional[str] = MOVE_TARGET, profile: Optional[Path] = PROFILE,
             set_: Optional[list[str]] = SET) -> None:
    """Make `previous` the champion again."""
    reg = _moving_registry(registry, home, target, profile, set_)
    mv = reg.rollback(name, reason=reason)
    _moved(fmt, reg.store.uri(), "rollback", name, mv.version, reg.replaced)
    _stale_endpoints(home, name, mv)


def _stale_endpoints(home: Path, name: str, champion) -> None:
    """A warning for each local endpoint of this home serving another version of `name` than the new champion:
    an alias move changes no running server (an endpoint serves what its last deploy started), and a rollback
    that left v2 answering said only 'rolled back; champion is v1'."""
    from kubepipe.cli.serve import endpoints_home
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoint_record import list_record_names, read_record
    from kubepipe.errors import KubepipeError

    champ = Path(champion.model_uri)
    if not champ.is_dir():  # a remote registry: its endpoints serve a download, not this folder
        return
    versions = champ.resolve().parent.parent
    try:
        root = endpoints_home(home)  # where `endpoints list` reads them
    except (KubepipeError, ComponentError):  # an unreadable local profile: the move is made, and says so
        return
    for endpoint in list_record_names(root):
        try:
            rec = read_record(root, endpoint) or {}
        except ComponentError:
            continue  # `endpoints list` names an unreadable record
        served = Path(str(rec.get("model_dir", ""))).resolve()
        if served.parent.parent == versions and served != champ.resolve():
            console.warn(f"local endpoint {endpoint} still serves {name} v{served.parent.name} ({served}): moving "
                         f"the champion restarts no server; it serves v{champion.version} once a deploy step "
                         "deploys it")


def _moved(fmt: Format, where: str, action: str, name: str, champion: int, was: Optional[int]) -> None:
    if output.is_json(fmt):
        output.emit("AliasMove", {"registry": where, "name": name, "action": action, "champion": champion, "was": was})
        return
    if was == champion:  # already so (a promote of the champion, a rollback another writer made): nothing moved
        console.out.print(f"[green]✓[/green] {console.escape(name)}: champion is already v{champion}; nothing moved")
        return
    what = "rolled back; champion" if action == "rollback" else "champion"
    since = f" (was v{was})" if action == "promote" and was is not None and was != champion else ""
    console.out.print(f"[green]✓[/green] {console.escape(name)}: {what} is v{champion}{since}")


@models.command("gc")
def gc(name: Optional[str] = typer.Argument(None, help="A model name; omit for every model."),
       older_than: float = typer.Option(60.0, "--older-than", parser=minutes, metavar="MINUTES",
                                      help="Minutes (or a duration: 90s, 30m, 2h, 1d): only an unfinished "
                                           "registration, or a temp file, older than this is removed."),
       dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
       registry: Optional[str] = REGISTRY, home: Path = HOME, fmt: Format = FORMAT) -> None:
    """Remove incomplete versions (their registration died: killed, full disk) older than --older-than,
    and temp files (.tmp-*) a killed write left in the registry, as old.

    Complete and corrupt versions, and any version an alias or the rollback stack points to, are
    never touched. Younger incomplete versions may still be copying, so they stay.
    """
    reg = _registry(registry, home)
    removed = reg.gc(name, older_than_s=older_than * 60, dry_run=dry_run)
    if output.is_json(fmt):
        output.emit("ModelGc", {"registry": reg.store.uri(), "dry_run": dry_run, "older_than_minutes": older_than, "items": removed})
        return
    if not removed:  # in a registry that is not there (a typo) too, which was not said
        hint = _nothing_there(reg, registry, home)
        console.out.print(f"no incomplete versions or temp files older than {older_than:g} min"
                          + (console.escape(f" in {reg.store.uri()}{hint}") if hint else ""))
        return
    verb = "would remove" if dry_run else "removed"
    output.table(("action", "model", "version", "what", "age (min)", "path"),
                 [(verb, r["name"], "-" if r["version"] is None else f"v{r['version']}", r["what"],
                   f"{r['age_s'] / 60:.0f}", r["path"]) for r in removed])


def register(app: typer.Typer) -> None:
    app.add_typer(models, name="models")
