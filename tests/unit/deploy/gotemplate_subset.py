"""A small renderer for the subset of Helm's Go templates our chart uses, for offline tests.

No helm binary installs here (not in Debian 12, not on PyPI for Python 3.11), so the chart keeps to:
actions `if / else if / else / range / with / define / template / end`, variables (`$x :=`, `$k, $v :=`),
pipelines with `|`, parentheses, and the functions listed in FUNCS. Anything else raises TemplateError,
so a template that strays outside the subset fails the tests instead of rendering wrongly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from gotemplate_funcs import FUNCS, Fail, TemplateError, to_str, truthy

__all__ = ["Fail", "Renderer", "TemplateError", "merge_values", "render_chart"]


ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||:=|=|,|[^\s()|,]+)')


class Files:
    def __init__(self, root: Path):
        self.root = root

    def Get(self, name: str) -> str:  # Helm's name
        return (self.root / name).read_text(encoding="utf-8")


def _parse(text: str) -> list:
    """Text and actions, with `{{-` / `-}}` whitespace trimming applied, as a flat token list."""
    out: list = []
    pos = 0
    trim_next = False
    for m in ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        body = m.group(2)
        if not body.startswith("/*"):
            out.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = text[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


def _tree(tokens: list, i: int = 0, stop: tuple[str, ...] = ()) -> tuple[list, int, str]:
    """Nested nodes until one of `stop` ('end', 'else...'); returns (nodes, next index, stop word)."""
    nodes: list = []
    while i < len(tokens):
        kind, body = tokens[i]
        i += 1
        if kind == "text":
            nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0]
        if word in stop or (word == "else" and "else" in stop):
            return nodes, i, body
        if word in ("if", "range", "with"):
            node, i = _block(tokens, i, word, body[len(word):].strip())
            nodes.append(node)
        elif word == "define":
            inner, i, _ = _tree(tokens, i, ("end",))
            nodes.append(("define", json.loads(body.split(None, 1)[1]), inner))
        elif word == "template":
            name, _, rest = body.split(None, 1)[1].partition(" ")
            nodes.append(("template", json.loads(name), rest.strip() or "."))
        elif word in ("end", "else", "block"):
            raise TemplateError(f"unexpected {{{{ {body} }}}}")
        else:
            nodes.append(("out", body))
    if stop:
        raise TemplateError(f"missing {{{{ end }}}} (wanted {stop})")
    return nodes, i, ""


def _block(tokens: list, i: int, word: str, head: str) -> tuple[tuple, int]:
    branches: list = []
    body, i, ended = _tree(tokens, i, ("end", "else"))
    branches.append((head, body))
    while ended.startswith("else"):
        rest = ended[4:].strip()
        if rest.startswith("if ") and word == "if":
            body, i, ended = _tree(tokens, i, ("end", "else"))
            branches.append((rest[3:].strip(), body))
        elif not rest:
            body, i, ended = _tree(tokens, i, ("end",))
            branches.append((None, body))
        else:
            raise TemplateError(f"unsupported {{{{ {ended} }}}}")
    return (word, branches), i


class Renderer:
    def __init__(self, chart: Path, values: dict[str, Any], *, release: str = "rel", namespace: str = "default"):
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        self.root = {"Values": values, "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
                     "Chart": {"Name": meta["name"], "Version": meta["version"],
                               "AppVersion": meta.get("appVersion", "")},
                     "Files": Files(chart), "Template": {"BasePath": f"{meta['name']}/templates"}}
        self.defines: dict[str, list] = {}
        self.templates: dict[str, list] = {}
        for path in sorted((chart / "templates").iterdir()):
            if path.suffix not in (".yaml", ".yml", ".tpl"):
                continue  # NOTES.txt is printed by helm, not applied
            nodes, _, _ = _tree(_parse(path.read_text(encoding="utf-8")))
            self._collect_defines(nodes)
            if not path.name.startswith("_"):
                self.templates[path.name] = nodes
                self.defines[f"{meta['name']}/templates/{path.name}"] = nodes

    def _collect_defines(self, nodes: list) -> None:
        for node in nodes:
            if node[0] == "define":
                self.defines[node[1]] = node[2]

    def render_all(self) -> dict[str, str]:
        return {name: self._run(nodes, self.root, {"$": self.root}) for name, nodes in self.templates.items()}

    # -- execution ----------------------------------------------------------------------------
    def _run(self, nodes: list, dot: Any, env: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "out":
                value = self._pipeline(node[1], dot, env)
                out.append("" if isinstance(value, _Assigned) else to_str(value))
            elif kind == "if":
                out.append(self._if(node[1], dot, env))
            elif kind == "with":
                (head, body), *rest = node[1]
                value = self._pipeline(head, dot, env)
                if truthy(value):
                    out.append(self._run(body, value, dict(env)))
                elif rest:
                    out.append(self._run(rest[0][1], dot, dict(env)))
            elif kind == "range":
                out.append(self._range(node[1], dot, env))
            elif kind == "template":
                out.append(self._include(node[1], self._pipeline(node[2], dot, env)))
        return "".join(out)

    def _if(self, branches: list, dot: Any, env: dict[str, Any]) -> str:
        for head, body in branches:
            if head is None or truthy(self._pipeline(head, dot, env)):
                return self._run(body, dot, dict(env))
        return ""

    def _range(self, branches: list, dot: Any, env: dict[str, Any]) -> str:
        head, body = branches[0]
        names: list[str] = []
        if ":=" in head:
            left, head = head.split(":=", 1)
            names = [n.strip() for n in left.split(",")]
        seq = self._pipeline(head.strip(), dot, env)
        items = sorted(seq.items()) if isinstance(seq, dict) else list(enumerate(seq or []))
        if not items and len(branches) > 1:
            return self._run(branches[1][1], dot, dict(env))
        out = []
        for key, value in items:
            scope = dict(env)
            if len(names) == 2:
                scope[names[0]], scope[names[1]] = key, value
            elif names:
                scope[names[0]] = value
            out.append(self._run(body, value, scope))
        return "".join(out)

    def _include(self, name: str, dot: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"no template {name!r}")
        return self._run(self.defines[name], dot, {"$": self.root})

    def _pipeline(self, text: str, dot: Any, env: dict[str, Any]) -> Any:
        tokens = TOKEN.findall(text)
        if len(tokens) >= 2 and tokens[0].startswith("$") and tokens[1] in (":=", "="):
            env[tokens[0]] = self._eval_tokens(tokens[2:], dot, env)
            return _Assigned()
        return self._eval_tokens(tokens, dot, env)

    def _eval_tokens(self, tokens: list[str], dot: Any, env: dict[str, Any]) -> Any:
        commands: list[list[Any]] = [[]]
        depth = 0
        group: list[str] = []
        for tok in tokens:
            if depth:
                depth += (tok == "(") - (tok == ")")
                if depth == 0:
                    commands[-1].append(_Value(self._eval_tokens(group, dot, env)))
                    group = []
                else:
                    group.append(tok)
            elif tok == "(":
                depth = 1
            elif tok == "|":
                commands.append([])
            else:
                commands[-1].append(tok)
        result: Any = _NoValue
        for cmd in commands:
            args = [] if result is _NoValue else [result]
            result = self._command(cmd, dot, env, args)
        return result

    def _command(self, cmd: list[Any], dot: Any, env: dict[str, Any], piped: list[Any]) -> Any:
        head, *rest = cmd
        args = [self._term(t, dot, env) for t in rest] + piped
        if isinstance(head, str) and head in FUNCS:
            return FUNCS[head](*args)
        if head == "include":
            return self._include(args[0], args[1])
        value = self._term(head, dot, env)
        if callable(value):
            return value(*args)
        if args:
            raise TemplateError(f"{head} is not a function")
        return value

    def _term(self, tok: Any, dot: Any, env: dict[str, Any]) -> Any:
        if isinstance(tok, _Value):
            return tok.value
        if tok.startswith('"'):
            return json.loads(tok)
        if tok.startswith("`"):
            return tok[1:-1]
        if tok in ("true", "false"):
            return tok == "true"
        if tok == "nil":
            return None
        if re.fullmatch(r"-?\d+", tok):
            return int(tok)
        if re.fullmatch(r"-?\d+\.\d+", tok):
            return float(tok)
        if tok.startswith("$"):
            name, _, path = tok.partition(".")
            if name not in env:
                raise TemplateError(f"undefined variable {name}")
            return _walk(env[name], path)
        if tok.startswith("."):
            return _walk(dot, tok[1:])
        raise TemplateError(f"unknown function or value {tok!r}")


class _Assigned:
    pass


class _NoValue:
    pass


class _Value:
    def __init__(self, value: Any):
        self.value = value


def _walk(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if isinstance(value, dict):
            value = value.get(part)
        elif value is None:
            return None
        else:
            value = getattr(value, part)
    return value


def render_chart(chart: Path, values: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    """All manifests the chart renders with `values` (already merged over values.yaml)."""
    docs: list[dict[str, Any]] = []
    for name, text in Renderer(chart, values, **kw).render_all().items():
        try:
            docs += [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as exc:
            raise TemplateError(f"{name} renders invalid YAML: {exc}\n{text}") from exc
    return docs


def merge_values(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = merge_values(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out
