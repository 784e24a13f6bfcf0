"""The chart renderer used by the tests, and the strictness of the schema validation they rely on."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from gotemplate_subset import Renderer, TemplateError

from deeplocal.deploy.render import render
from deeplocal.deploy.spec import parse_resource


def run(tmp_path, template: str, values: dict) -> str:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "Chart.yaml").write_text("name: t\nversion: 1.0.0\nappVersion: '2'\n")
    (tmp_path / "templates" / "x.yaml").write_text(template)
    return Renderer(tmp_path, values).render_all()["x.yaml"]


def test_actions_pipelines_and_trimming(tmp_path):
    tpl = ("a: {{ .Values.n | default 3 | quote }}\n"
           "{{- if eq .Values.k \"x\" }}\nb: 1\n{{- else if .Values.k }}\nb: 2\n{{- else }}\nb: 3\n{{- end }}\n"
           "{{- range $k, $v := .Values.m }}\n{{ $k }}: {{ $v }}\n{{- end }}\n"
           "{{- with .Values.l }}\nl: {{ toJson . }}\n{{- end }}\n"
           "c: {{ printf \"%s-%s\" .Chart.Name .Chart.AppVersion }}")
    out = run(tmp_path, tpl, {"k": "y", "m": {"z": 1, "a": 2}, "l": [1, 2]})
    assert out == 'a: "3"\nb: 2\na: 2\nz: 1\nl: [1,2]\nc: t-2'


def test_unsupported_constructs_fail_loudly(tmp_path):
    with pytest.raises(TemplateError):
        run(tmp_path, '{{ lookup "v1" "Secret" "ns" "name" }}', {})
    with pytest.raises(TemplateError):
        run(tmp_path, "{{ if .Values.a }}open", {})
    with pytest.raises(TemplateError):
        run(tmp_path, '{{ ternary "a" "b" "not-a-bool" }}', {})


def test_schema_validation_is_strict():
    good = next(m for m in render(parse_resource({
        "apiVersion": "deeplocal.dev/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": "t"},
        "spec": {"model": {"name": "m", "source": "smollm2-135m"}, "engine": "llamacpp"}})).manifests
        if m["kind"] == "Deployment")
    kubernetes_validate.validate(good, "1.32", strict=True)
    typo = copy.deepcopy(good)
    typo["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, "1.32", strict=True)
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, "1.32", strict=True)
