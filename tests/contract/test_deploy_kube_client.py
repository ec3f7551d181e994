"""kube_api_client builds its ApiClient on a Configuration of its own (kubernetes' public loaders given
client_configuration=): two threads of one process (the Python API) each reach the cluster of their kubeconfig,
and the process's default Configuration (the caller's own kubernetes clients) is left alone."""

from __future__ import annotations

import threading

import pytest

from loopback import JsonHandler, LoopbackServer

pytest.importorskip("kubernetes")

from kubepipe.components.deploy.isvc_api import kube_api_client  # noqa: E402

pytestmark = pytest.mark.contract

def _kubeconfig(path, *clusters: tuple[str, str]) -> str:
    """A kubeconfig at `path` with a cluster, a user (token-NAME) and a context per (name, url); the first current."""
    import yaml

    names = [name for name, _ in clusters]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": names[0],
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in clusters],
        "users": [{"name": name, "user": {"token": f"token-{name}"}} for name in names],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in names]}))
    return str(path)


class FakeApiServer(LoopbackServer):
    """Answers GET /version, keeping the bearer token of each request."""

    def __init__(self):
        self.tokens: list[str] = []
        self.lock = threading.Lock()

    def dispatch(self, h: JsonHandler) -> None:
        with self.lock:
            self.tokens.append(h.headers.get("Authorization", ""))
        h.send_json(200, {"major": "1", "minor": "30", "gitVersion": f"v1.30.0+{self.url}", "gitCommit": "0",
                          "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22",
                          "compiler": "gc", "platform": "linux/amd64"})


def test_two_threads_with_two_kubeconfigs_each_reach_their_own_cluster(tmp_path):
    from kubernetes import client

    own = client.Configuration(host="http://127.0.0.1:9")  # the caller's own default, set before kubepipe runs
    client.Configuration.set_default(own)
    rounds, start = 20, threading.Barrier(2)
    answered: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    with FakeApiServer() as a, FakeApiServer() as b:
        files = {name: _kubeconfig(tmp_path / f"{name}.yaml", (name, fake.url)) for name, fake in (("a", a), ("b", b))}

        def work(name: str) -> None:
            try:
                start.wait(timeout=10)
                for _ in range(rounds):
                    api = kube_api_client(config_file=files[name])
                    answered[name].append(client.VersionApi(api).get_code().git_version)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(name,)) for name in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        tokens = {"a": list(a.tokens), "b": list(b.tokens)}
        urls = {"a": a.url, "b": b.url}
    try:
        assert not errors, errors
        for name in ("a", "b"):
            assert answered[name] == [f"v1.30.0+{urls[name]}"] * rounds
            assert tokens[name] == [f"Bearer token-{name}"] * rounds
        assert client.Configuration.get_default_copy().host == "http://127.0.0.1:9"
    finally:
        client.Configuration.set_default(None)


def test_a_context_other_than_the_current_one_is_used_when_given(tmp_path):
    from kubernetes import client

    with FakeApiServer() as a, FakeApiServer() as b:
        path = _kubeconfig(tmp_path / "both.yaml", ("a", a.url), ("b", b.url))  # current context: a
        client.VersionApi(kube_api_client(config_file=path, context="b")).get_code()
        client.VersionApi(kube_api_client(config_file=path)).get_code()
        assert (a.tokens, b.tokens) == (["Bearer token-a"], ["Bearer token-b"])


CALLER = """
from kubernetes import client
from kubepipe.components.deploy.isvc_api import kube_api_client

client.Configuration.set_default(client.Configuration(host="http://127.0.0.1:9"))  # the caller's own
print(client.VersionApi(kube_api_client()).get_code().git_version)
print(client.Configuration.get_default_copy().host)
"""


def test_the_default_kubeconfig_leaves_the_callers_default_configuration_alone(tmp_path):
    """load_kube_config() without client_configuration replaced the process's default Configuration: a program
    that had set up its own kubernetes client (another cluster) found it pointed at $KUBECONFIG's after a deploy."""
    import os
    import subprocess  # nosec B404 - this test's own interpreter
    import sys

    with FakeApiServer() as a:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}  # not in a pod
        env["KUBECONFIG"] = _kubeconfig(tmp_path / "a.yaml", ("a", a.url))  # read when kubernetes is imported
        out = subprocess.run([sys.executable, "-c", CALLER], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"v1.30.0+{a.url}", "http://127.0.0.1:9"]
        assert a.tokens == ["Bearer token-a"]


@pytest.mark.parametrize("text, said", [(None, "ConfigException: Invalid kube-config file. No configuration found."),
                                        ("not: yaml: [", "ScannerError: mapping values are not allowed here"),
                                        ("apiVersion: v1\nkind: Config\ncontexts: []\n",
                                         "ConfigException: Invalid kube-config file. Expected key current-context")])
def test_a_kubeconfig_that_cannot_be_loaded_is_a_rollout_error_saying_what_to_do(tmp_path, text, said):
    """A deploy with no kubeconfig failed with kubernetes' bare 'ConfigException: Invalid kube-config file. No
    configuration found.', retried as if the cluster might appear, naming neither the file nor what to do."""
    from kubepipe.components.deploy.isvc_api import RolloutError
    from kubepipe.components.errors import not_retryable

    path = tmp_path / "kubeconfig"
    if text is not None:
        path.write_text(text)
    with pytest.raises(RolloutError) as exc:
        kube_api_client(config_file=str(path))
    assert str(exc.value).startswith(
        f"no Kubernetes cluster to deploy to: not inside a pod (no in-cluster service account) and the kubeconfig "
        f"{path} cannot be loaded: {said}")
    assert str(exc.value).endswith("point KUBECONFIG at the cluster's kubeconfig (`kubectl config current-context` "
                                   "names the one in use), or run the pipeline on the cluster")
    assert not_retryable(exc.value)


HELD = """
import threading, time
from kubernetes import client
from kubepipe.components.deploy.isvc_api import kube_api_client
from kubepipe.kfp_client_build import kubeconfig_file

inside, answered = threading.Event(), []


def build_kfp_client():  # a kfp.Client build for a profile's auth.kubeconfig, in another thread
    with kubeconfig_file({other!r}):
        inside.set()
        time.sleep(1.0)


t = threading.Thread(target=build_kfp_client)
t.start()
inside.wait(10)
print(client.VersionApi(kube_api_client()).get_code().git_version)
t.join()
"""


def test_the_default_kubeconfig_is_not_read_while_a_kfp_client_build_points_it_at_a_profile_s(tmp_path):
    """kfp_client_build points kubernetes' default location at a profile's auth.kubeconfig while a kfp.Client is
    built (decision 0018): a rollout reading the default then reached that profile's cluster."""
    import os
    import subprocess  # nosec B404 - this test's own interpreter
    import sys

    with FakeApiServer() as mine, FakeApiServer() as other:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
        env["KUBECONFIG"] = _kubeconfig(tmp_path / "mine.yaml", ("mine", mine.url))
        code = HELD.format(other=_kubeconfig(tmp_path / "other.yaml", ("other", other.url)))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"v1.30.0+{mine.url}"]
        assert (mine.tokens, other.tokens) == (["Bearer token-mine"], [])
