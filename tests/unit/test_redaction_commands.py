"""Credentials a command line or a config file holds where no key names them (text_credentials.COMMAND_CREDENTIALS)."""

from __future__ import annotations

import pytest

from kubepipe.secrets import check_profile_secrets, label_secrets, redact_text


@pytest.mark.parametrize("text, shown", [
    ("curl -u bob:Hunter2 https://x", "curl -u bob:<redacted> https://x"),
    ("curl -sS --user=bob:Hunter2 https://x", "curl -sS --user=bob:<redacted> https://x"),
    ("curl --proxy-user 'bob:Hunter2' https://x", "curl --proxy-user 'bob:<redacted>' https://x"),
    ("Command '['curl', '-u', 'bob:Hunter2', 'https://x']'", "Command '['curl', '-u', 'bob:<redacted>', 'https://x']'"),
    ("mysql -pHunter2 -h db", "mysql -p<redacted> -h db"),
    ("mysqldump -u root -pHunter2 shop", "mysqldump -u root -p<redacted> shop"),
    ("machine h login bob password Hunter2", "machine h login bob password <redacted>"),
    ("machine h\n  login bob\n  password Hunter2\n", "machine h\n  login bob\n  password <redacted>\n"),
    ("default login bob password Hunter2", "default login bob password <redacted>"),
    ("docker login -u bob -p Hunter2 reg.io", "docker login -u bob -p <redacted> reg.io"),
    ("Command '['docker', 'login', '-u', 'bob', '-p', 'Hunter2', 'reg.io']'",
     "Command '['docker', 'login', '-u', 'bob', '-p', '<redacted>', 'reg.io']'"),
    ("podman login -pHunter2 reg.io", "podman login -p<redacted> reg.io"),
    ("sshpass -p Hunter2 ssh host", "sshpass -p <redacted> ssh host"),
    ("redis-cli -h cache -a Hunter2 ping", "redis-cli -h cache -a <redacted> ping"),
    ('{"auths": {"reg.io": {"auth": "Ym9iOkh1bnRlcjI="}}}', '{"auths": {"reg.io": {"auth": "<redacted>"}}}'),
])
def test_a_command_lines_or_config_files_credential_is_hidden(text, shown):
    # were shown as given: no key named them
    assert redact_text(text) == shown


@pytest.mark.parametrize("text", [
    "curl -u bob: https://x",  # curl prompts for the password
    "mysql -u root -p shop",  # -p then a space: a prompt, `shop` is the database
    "mysql -p${env.MYSQL_PW} -h db",
    "docker run -u 1000:1000 -p 8080:80 img",  # uid:gid and a port, no curl / mysql
    "docker login --password-stdin -u bob reg.io", "redis-cli -a $REDIS_PW ping", "docker login reg.io; ls -a x",
    "ssh -p 2222 host",
    "the password is wrong; retry the login",
    "profile.auth: cannot load the kubeconfig",
    '{"auth": "kubeconfig"}',
    "pip install --user torch:2",
    # were `the default password <redacted> changeme`: read as a .netrc entry
    "the default password is changeme", "Use the default password reset flow", "machine learning password policy",
    'curl -u "$USER:$PASS" https://x', "mysql -p$MYSQL_PWD -h db",
])
def test_ordinary_text_is_kept(text):
    assert redact_text(text) == text


def test_a_docker_auth_is_refused_in_a_profile_and_a_label():
    assert "x.auth: credentials must not be" in check_profile_secrets({"x": {"auth": "Ym9iOkh1bnRlcjI="}})[0]
    assert [k for _, k, _ in label_secrets({"auth": "Ym9iOkh1bnRlcjI=", "team": "ml"}, ())] == ["auth"]


def test_an_image_reference_with_registry_credentials_is_refused_naming_where_it_came_from(tmp_path):
    # `--set runtime_image=u:pw@reg/img:1` passed validate and was compiled into every executor's image
    from kubepipe.arguments import cli_arguments
    from kubepipe.errors import ValidationError
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "kubeflow.yaml"
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n")
    with pytest.raises(ValidationError) as exc, cli_arguments():
        load_profile("kubeflow", profile_file=profile, sets={"runtime_image": "bob:Hunter2@reg.io/img:1"}, environ={})
    [issue] = exc.value.issues
    assert (issue.file, issue.path) == ("--set", "runtime_image")
    assert "an image reference with registry credentials" in issue.hint and "Hunter2" not in str(exc.value)
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n"
                       "runtime_image: bob:Hunter2@reg.io/img:1\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=profile, environ={})
    [issue] = exc.value.issues
    assert (issue.line, issue.path, issue.message) == (4, "runtime_image", "credentials in YAML are refused")


@pytest.mark.parametrize("image", ["python:3.11", "gcr.io/p/img:1", "reg.io:5000/team/img:1", "localhost:5000/img",
                                   "reg.io/img:1@sha256:" + "ab" * 32, "img@sha256:" + "ab" * 32,
                                   "ghcr.io/a/b:1.2@sha256:" + "cd" * 32])
def test_an_ordinary_image_reference_is_no_credential(image):
    from kubepipe.secrets import secret_value_kind

    assert secret_value_kind(image) is None and redact_text(f"image: {image}") == f"image: {image}"


@pytest.mark.parametrize("text, shown", [
    # a pull error quoting the image was shown with its password: only validate refused it, in YAML
    ("failed to pull bob:Hunter22pw@registry.example.com/team/img:1: denied",
     "failed to pull bob:<redacted>@registry.example.com/team/img:1: denied"),
    ("image=bob:Hunter22pw@reg.io:5000/img", "image=bob:<redacted>@reg.io:5000/img"),
    ("pull 'u:pw@localhost:5000/img'", "pull 'u:<redacted>@localhost:5000/img'"),
    ('{"image": "bob:Hunter22pw@reg.io/img"}', '{"image": "bob:<redacted>@reg.io/img"}'),
])
def test_an_image_reference_s_registry_password_in_free_text_is_redacted(text, shown):
    assert redact_text(text) == shown


@pytest.mark.parametrize("text", [
    "ana@example.com wrote reg.io/img@sha256:abc", "scp user@host.io:/srv/x .", "at 12:30@reg.io/x",
    "mailto:bob@example.com/x", "python:3.11@sha256:ab", "https://ana@example.com/x", "a:b@c/d",
])
def test_text_like_an_image_reference_with_credentials_is_kept(text):
    assert redact_text(text) == text


def test_refusing_an_image_with_pull_credentials_says_how_images_are_pulled(tmp_path):
    """The hint was 'reference them from the environment instead' (a profile) or 'pass it to a step as env:
    {VAR: {secret: ...}}' (a pipeline): no runtime pulls an image with a step's environment variable."""
    import kubepipe
    from kubepipe.errors import ValidationError
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "kubeflow.yaml"
    profile.write_text("target: kubeflow\nhost: http://h\npipeline_root: gs://b/r\n"
                       "runtime_image: bob:Hunter2@reg.io/img:1\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=profile, environ={})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                        "  a: {component: notify, image: 'bob:Hunter2@reg.io/img:1'}\n")
    with pytest.raises(ValidationError) as in_pipeline:
        kubepipe.validate(pipeline)
    for issue in (*exc.value.issues, *in_pipeline.value.issues):
        said = issue.format()
        assert "imagePullSecret" in said and "workload identity" in said and "docker login" in said, said
        assert "from the environment" not in said and "env: {VAR" not in said and "Hunter2" not in said, said
