"""kubepipe's kfp.Client relies on parts of kfp and kfp_server_api that kfp does not document: pin them."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("kfp")

from kubepipe.dependency_pins import changed  # noqa: E402
from kubepipe.kfp_client_build import KUBERNETES_DECLARED  # noqa: E402


def test_the_kfp_client_parts_kubepipe_uses_are_there():
    import kfp
    import kfp_server_api

    init = inspect.getsource(kfp.Client.__init__)
    assert "self._healthz_api = kfp_server_api.HealthzServiceApi(" in init  # get_kfp_healthz asks it directly
    assert "_add_generated_apis(self, kfp_server_api, api_client)" in init  # client.healthzs.api_client
    assert "_request_timeout" in inspect.signature(kfp_server_api.ApiClient.request).parameters
    assert "'_request_timeout'" in inspect.getsource(
        kfp_server_api.HealthzServiceApi.healthz_service_get_healthz_with_http_info)
    # what request returns: its body is what the deserializer reads (a login page became an empty model)
    assert "self.data = resp.data" in inspect.getsource(kfp_server_api.rest.RESTResponse.__init__)
    assert "json.loads(response.data)" in inspect.getsource(kfp_server_api.ApiClient.deserialize)


def test_a_request_without_a_timeout_parameter_fails_loudly():
    from importlib.metadata import version

    from kubepipe.clients import _bound_calls

    class OldApiClient:
        def request(self, method, url):
            return None

    from kubepipe.errors import UserError

    with pytest.raises(UserError, match=rf"KFP client .* cannot be applied to kfp {version('kfp')}: "
                                        r"kfp_server_api\.ApiClient\.request now takes \(method, url\), no _request_timeout\. "
                                        r".*pip install 'kfp==2\.17\.3'"):
        _bound_calls(OldApiClient(), (1.0, 1.0))


def test_a_kfp_client_without_its_private_healthz_api_fails_loudly_naming_kfp(monkeypatch):
    """kfp.Client's constructor asks get_kfp_healthz, which kubepipe answers through kfp's private `_healthz_api`
    (with a timeout): a kfp without it was an AttributeError, shown as 'cannot reach Kubeflow Pipelines'."""
    from importlib.metadata import version

    import kfp

    import kubepipe.clients as clients
    from kubepipe.errors import UserError

    def init(self, host=None, **kwargs):  # a kfp whose client keeps its APIs elsewhere
        self.get_kfp_healthz()

    monkeypatch.setattr(kfp.Client, "__init__", init)
    monkeypatch.setenv("KFP_TOKEN", "t")
    with pytest.raises(UserError, match=rf"^kubepipe's KFP client .* cannot be applied to kfp {version('kfp')}: "
                                        r"kfp\.Client has no _healthz_api\. Without it a KFP host that never answers "
                                        r"would hang the command, so no KFP call is made\."):
        clients.kfp_client({"host": "http://127.0.0.1:9"})


def test_kfp_local_keeps_its_one_config_where_a_local_run_puts_the_callers_back(tmp_path):
    """backends/local/process_state.py saves and restores kfp.local's process-wide config around a run (the
    caller's own kfp.local tasks must not run with the run's); `LocalExecutionConfig.instance` is where kfp.local
    keeps it, undocumented: pinned here, so a kfp that moves it fails this test, not a user's notebook."""
    from kfp import local
    from kfp.local import config

    assert hasattr(config.LocalExecutionConfig, "instance")
    # workspace_root: without it init makes a /tmp/kfp-workspace-* folder, removed only when a pipeline returns
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root="/tmp/pinned-root",
               workspace_root=str(tmp_path / "workspace"))
    try:
        assert config.LocalExecutionConfig.instance.pipeline_root == "/tmp/pinned-root"
    finally:
        config.LocalExecutionConfig.instance = None



def test_a_kfp_local_without_its_config_instance_is_named_before_a_local_run(monkeypatch):
    """A kfp without `LocalExecutionConfig.instance` failed every local run with an AttributeError."""
    from importlib.metadata import version

    from kfp.local import config

    from kubepipe.backends.local.process_state import process_kept
    from kubepipe.errors import UserError

    monkeypatch.delattr(config.LocalExecutionConfig, "instance")
    with pytest.raises(UserError, match=rf"^kubepipe's keeping of the caller's kfp.local settings cannot be applied "
                                        rf"to kfp {version('kfp')}: kfp\.local\.config\.LocalExecutionConfig\.instance "
                                        r"is gone\. Without it the caller's own kfp.local tasks would run with the "
                                        r"run's settings, so local runs stop here\."):
        with process_kept():
            pytest.fail("ran")

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u1, user: {token: not-a-real-token}}]
contexts: [{name: dev, context: {cluster: c1, user: u1}}]
current-context: dev
"""


def test_two_threads_building_clients_for_two_kubeconfigs_each_read_their_own(tmp_path, monkeypatch):
    """kubernetes' default kubeconfig location is one value in the process, which the client's build sets to the
    profile's auth.kubeconfig: two threads of a service building clients for two profiles at once each could load
    the other's (its cluster, its token)."""
    import threading
    import time

    from kubernetes.config import kube_config

    import kubepipe.clients as clients

    class Recorder:  # kfp.Client's build, slow enough for the other thread to come in between
        def __init__(self, request_timeout_s: float, **kwargs) -> None:
            time.sleep(0.3)
            self.loaded = kube_config.KUBE_CONFIG_DEFAULT_LOCATION

    monkeypatch.setattr(clients, "_kfp_client_class", lambda: Recorder)
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    paths = {name: tmp_path / name for name in ("team-a", "team-b")}
    for path in paths.values():
        path.write_text(KUBECONFIG)
    built: dict[str, str] = {}

    def build(name: str) -> None:
        built[name] = clients.kfp_client({"auth": {"kubeconfig": str(paths[name]), "context": "dev"}}).loaded

    threads = [threading.Thread(target=build, args=(name,)) for name in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == {name: str(path) for name, path in paths.items()}


def test_quiet_kfp_calls_in_two_threads_leave_stdout_and_warnings_as_they_were(capsys):
    """kubepipe.clients.quiet swapped sys.stdout for a StringIO and the warning filters for 'ignore', which are the
    process's: two threads' kfp calls overlapping (a service submitting) left print() writing into a dead StringIO
    and every warning ignored, for the rest of the process."""
    import sys
    import threading
    import warnings

    from kubepipe.clients import quiet

    stdout, showwarning = sys.stdout, warnings.showwarning
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with quiet():
            print("kfp's link, thread a")
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with quiet():
            b_in.set()
            a_out.wait(5)
            print("kfp's link, thread b")

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    a_in.wait(5)
    print("the notebook's own line")  # another thread, while both are quiet
    for t in threads:
        t.join()
    assert sys.stdout is stdout and warnings.showwarning is showwarning
    print("after")
    # what the main thread printed, whole; blank carriage-return redraws another test's leftover thread may write
    # to the same stream under xdist (seen once in CI) are not this test's
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert [ln.strip() for ln in lines] == ["the notebook's own line", "after"]


def test_kfp_loads_the_kubeconfig_from_kubernetes_default_location():
    """kfp.Client takes no kubeconfig file: it calls load_kube_config() without config_file, which reads the
    undocumented KUBE_CONFIG_DEFAULT_LOCATION that clients._kubeconfig_file sets to auth.kubeconfig (decision 0018)."""
    import re

    import kfp
    from kubernetes.config import kube_config

    assert "kubeconfig" not in " ".join(inspect.signature(kfp.Client).parameters)
    assert re.search(r"load_kube_config\(\s*client_configuration=config, context=kube_context\)",
                     inspect.getsource(kfp.Client))
    assert isinstance(kube_config.KUBE_CONFIG_DEFAULT_LOCATION, str)
    assert inspect.signature(kube_config.load_kube_config).parameters["config_file"].default is None


def test_a_kubernetes_without_the_default_location_fails_loudly_naming_its_version(tmp_path, monkeypatch):
    """Were the name gone (or no longer read), setting it would change nothing and kfp would load the shell's
    kubeconfig, another cluster: it stops with what changed and the KUBECONFIG way instead of an AttributeError."""
    from importlib.metadata import version

    from kubernetes.config import kube_config

    import kubepipe.clients as clients
    from kubepipe.errors import UserError

    monkeypatch.setattr(clients, "_kfp_client_class", lambda: pytest.fail("built"))
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    monkeypatch.delattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION")
    path = tmp_path / "team-a"
    path.write_text(KUBECONFIG)
    with pytest.raises(UserError) as err:
        clients.kfp_client({"auth": {"kubeconfig": str(path), "context": "dev"}}, where="profiles.kf")
    assert str(err.value).startswith(
        f"profiles.kf.auth.kubeconfig: kubepipe cannot point kfp.Client at {path} with kubernetes "
        f"{version('kubernetes')}: kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION is gone.")
    assert f"`export KUBECONFIG={path}`" in str(err.value)
    # the one text every pin says (dependency_pins.changed): what kubepipe declares, not a version of its own
    assert "tested with" not in str(err.value)
    assert str(err.value).endswith(changed("x", "kubernetes", "y", KUBERNETES_DECLARED).split("y. ", 1)[1])


def test_the_kubernetes_range_the_error_advises_is_what_kubepipe_declares():
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert f'"{KUBERNETES_DECLARED}"' in pyproject.read_text()


def test_a_kubernetes_without_load_kube_config_fails_loudly_not_with_an_attribute_error(tmp_path, monkeypatch):
    """The check read kube_config.load_kube_config's signature unguarded: a kubernetes release that renamed it
    stopped the build with AttributeError (a traceback), not the pin's text."""
    from kubernetes.config import kube_config

    from kubepipe.errors import UserError
    from kubepipe.kfp_client_build import kube_config_module

    monkeypatch.delattr(kube_config, "load_kube_config")
    with pytest.raises(UserError) as err:
        kube_config_module(str(tmp_path / "team-a"), "profiles.kf")
    assert ": kubernetes.config.kube_config.load_kube_config is gone. " in str(err.value)
    assert str(err.value).endswith(changed("x", "kubernetes", "y", KUBERNETES_DECLARED).split("y. ", 1)[1])
