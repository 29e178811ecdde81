"""Compile a project's pipes: templates, parameters, dependencies, and composed SQL.

``compile_project`` parses every node's template, renders it with sample values to find
what it reads, and builds the dependency graph. ``CompiledProject.compose`` turns a pipe
(or one node of it) into one statement by wrapping the nodes it needs, and the pipes it
reads, as ``WITH name AS (...)`` around the user's own text; for a server without
table CTEs that read each other (ClickHouse before 21.1, e.g. Debian's 18.16),
``nested=True`` puts each node in place of the names that read it, as ``(...) AS name``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rtp.errors import Location, Problems, RequestError, SqlError
from rtp.project.model import Node, Pipe, Project
from rtp.sql.analysis import SqlFacts, TableRef, analyze
from rtp.sql.params import Param
from rtp.sql.template import SampleValues, Template, TemplateError, compile_template


@dataclass
class CompiledNode:
    node: Node
    template: Template
    sample_sql: str = ""
    facts: SqlFacts = field(default_factory=lambda: SqlFacts([], False))

    _words: tuple[str, frozenset[str]] | None = field(default=None, repr=False)

    @property
    def refs(self) -> list[TableRef]:
        return self.facts.refs

    def words(self, text: str) -> frozenset[str]:
        """The names this node's rendered ``text`` mentions, with its compile-time refs;
        kept for the last text (a node without parameters renders one text only)."""
        memo = self._words
        if memo is not None and memo[0] == text:
            return memo[1]
        words = frozenset({r.name for r in self.refs} | set(_WORD.findall(text)))
        self._words = (text, words)
        return words


@dataclass
class CompiledPipe:
    pipe: Pipe
    nodes: list[CompiledNode]
    reads: dict[str, TableRef] = field(default_factory=dict)  # datasource/pipe -> first ref

    @property
    def name(self) -> str:
        return self.pipe.name

    def node(self, name: str) -> CompiledNode | None:
        return next((n for n in self.nodes if n.node.name == name), None)


@dataclass
class Composed:
    sql: str
    prefix: int  # characters before the user's text of the composed node begins
    shift: int = 0  # characters of the user's text dropped (a leading WITH merged)


@dataclass
class CompiledProject:
    project: Project
    pipes: dict[str, CompiledPipe]
    broken: set[str] = field(default_factory=set)  # pipes that can't be composed

    def params(self, pipe_name: str) -> dict[str, Param]:
        """Every parameter a pipe takes: its nodes' and those of the pipes it reads."""
        out: dict[str, Param] = {}
        for name in [*self.pipes_read(pipe_name), pipe_name]:
            for cnode in self.pipes[name].nodes:
                for pname, param in cnode.template.params.items():
                    if pname not in out or (not out[pname].declared and param.declared):
                        out[pname] = param
        return out

    def pipes_read(self, pipe_name: str, _seen: set | None = None) -> list[str]:
        """Pipes that ``pipe_name`` reads, directly or not, dependencies first."""
        seen = _seen if _seen is not None else set()
        out: list[str] = []
        for name in self.pipes[pipe_name].reads:
            if name in self.pipes and name not in seen:
                seen.add(name)
                out.extend(self.pipes_read(name, seen))
                out.append(name)
        return out

    def sample_values(self, pipe_name: str) -> dict:
        """Values to check (and deploy) a pipe with. An endpoint's: each parameter's
        example or default, the others undefined, rendered as a check (placeholders,
        see ``Template.sample_values``). A materialized or copy pipe's: none at all,
        rendered for real, because Tinybird creates the view (and runs a copy without
        parameters) from exactly that text: ``{% if defined(x) %}`` drops out, a
        parameter's default applies, and one without a default is an error."""
        if self.pipes[pipe_name].pipe.type in ("materialized", "copy"):
            return {}
        return SampleValues(
            {
                n: p.sample()
                for n, p in self.params(pipe_name).items()
                if p.declared and (p.example is not None or p.default is not None)
            }
        )

    def compose(
        self,
        pipe_name: str,
        values: dict,
        node_name: str | None = None,
        *,
        cached: Callable[[str, str], str | None] | None = None,
        nested: bool = False,
    ) -> Composed:
        """One statement for the pipe's output (or for ``node_name``) with ``values``;
        ``nested``: nodes and pipes as subqueries in place of their names, not as CTEs.

        ``cached(pipe, node)``: the text to use instead of a node's own (a cached node's
        result as a literal, :mod:`rtp.query.cache`), or None to render it; a
        substituted node reads nothing, so what only it read is left out.

        Raises RequestError when a value is missing or the template calls ``error()``,
        and SqlError (RTP303) when the pipe can't be composed because of a cycle.
        """
        if pipe_name in self.broken:
            raise SqlError(
                f"pipe '{pipe_name}' has dependency errors; run `rtp check`", code="RTP303"
            )
        cpipe = self.pipes[pipe_name]
        index = (
            len(cpipe.nodes) - 1
            if node_name is None
            else next(i for i, n in enumerate(cpipe.nodes) if n.node.name == node_name)
        )
        target = cpipe.nodes[index]
        rendered: dict[str, str] = {}
        substituted: set[str] = set()
        missing: list[RequestError] = []  # "required parameter is not defined" (RTP401)

        def render(cnode: CompiledNode) -> str:
            key = cnode.node.name
            if key not in rendered and cached is not None:
                text = cached(pipe_name, key)
                if text is not None:
                    rendered[key] = text
                    substituted.add(key)
            if key not in rendered:
                try:
                    rendered[key] = clean(cnode.template.render(values))
                except RequestError as exc:
                    if exc.code != "RTP401":
                        raise
                    missing.append(exc)  # an error() elsewhere says more: render on
                    rendered[key] = ""
            return rendered[key]

        def compose_other(name: str) -> str:
            try:
                return self.compose(name, values, cached=cached, nested=nested).sql
            except RequestError as exc:
                if exc.code != "RTP401":
                    raise
                missing.append(exc)
                return ""

        body = render(target)  # first, as Tinybird does: its error() checks come first
        nodes = self._nodes_needed(cpipe, index, render, substituted)
        ctes: list[tuple[str, str]] = []
        for other in self._pipes_for(cpipe, index, substituted):
            ctes.append((other, compose_other(other)))
        for cnode in nodes:
            ctes.append((cnode.node.name, render(cnode)))
        if missing:  # no node raised its own error(): the first missing parameter
            raise missing[0]
        if nested:
            return Composed(nest(body, dict(ctes)), 0)
        return with_ctes(ctes, body)

    def _nodes_needed(
        self, cpipe: CompiledPipe, index: int, render, substituted: set[str]
    ) -> list[CompiledNode]:
        """Earlier nodes that node ``index`` reads with these values, in pipe order: the
        node names in each rendered text (a template may read a node in one branch of an
        ``{% if %}`` only, which the check's sample rendering never saw), plus the refs
        found at compile time. A word that only looks like a node name adds an unused
        CTE, which ClickHouse never runs. A ``substituted`` node reads nothing."""
        names = {n.node.name: i for i, n in enumerate(cpipe.nodes[:index])}
        needed: set[int] = set()
        stack = [index]
        while stack:
            i = stack.pop()
            cnode = cpipe.nodes[i]
            text = render(cnode)
            if cnode.node.name in substituted:
                continue
            words = cnode.words(text) & names.keys()
            for word in words:
                j = names[word]
                if j < i and j not in needed:
                    needed.add(j)
                    stack.append(j)
        return [cpipe.nodes[i] for i in sorted(needed)]

    def unread_nodes(self, pipe_name: str) -> list[str]:
        """Nodes of a pipe that its output node doesn't read, directly or not."""
        cpipe = self.pipes[pipe_name]
        read = {n.node.name for n in self._nodes_for(cpipe, len(cpipe.nodes) - 1)}
        return [n.node.name for n in cpipe.nodes[:-1] if n.node.name not in read]

    def _nodes_for(
        self, cpipe: CompiledPipe, index: int, substituted: set[str] = frozenset()
    ) -> list[CompiledNode]:
        """Earlier nodes that node ``index`` needs, in pipe order (none through a
        ``substituted`` node)."""
        names = {n.node.name: i for i, n in enumerate(cpipe.nodes[:index])}
        needed: set[int] = set()
        stack = [cpipe.nodes[index]]
        while stack:
            cnode = stack.pop()
            if cnode.node.name in substituted:
                continue
            for ref in cnode.refs:
                i = names.get(ref.name)
                if i is not None and i not in needed:
                    needed.add(i)
                    stack.append(cpipe.nodes[i])
        return [cpipe.nodes[i] for i in sorted(needed)]

    def _pipes_for(
        self, cpipe: CompiledPipe, index: int, substituted: set[str] = frozenset()
    ) -> list[str]:
        node_names = {n.node.name for n in cpipe.nodes[:index]}
        out: list[str] = []
        for cnode in [*self._nodes_for(cpipe, index, substituted), cpipe.nodes[index]]:
            if cnode.node.name in substituted:
                continue
            for ref in cnode.refs:
                if ref.name in self.pipes and ref.name not in node_names and ref.name not in out:
                    out.append(ref.name)
        return out


_LEADING_WITH = re.compile(r"^\s*WITH\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def clean(sql: str) -> str:
    """Rendered node text without trailing whitespace and semicolons."""
    return sql.rstrip().rstrip(";").rstrip()


def with_ctes(ctes: list[tuple[str, str]], body: str) -> Composed:
    """``WITH a AS (...), b AS (...) <body>`` keeping ``body``'s text intact; a body that
    starts with its own WITH has its list merged after ours."""
    if not ctes:
        return Composed(body, 0)
    head = "WITH\n" + ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in ctes)
    match = _LEADING_WITH.match(body)
    if match:
        head += ",\n"
        return Composed(head + body[match.end() :], len(head), match.end())
    head += "\n"
    return Composed(head + body, len(head))


# words after a table name that are not its alias
_NOT_ALIAS = {
    "ANY", "ALL", "ARRAY", "ASOF", "ANTI", "SEMI", "CROSS", "FINAL", "FORMAT", "FULL",
    "GLOBAL", "GROUP", "HAVING", "INNER", "JOIN", "LEFT", "LIMIT", "ON", "ORDER", "OUTER",
    "PREWHERE", "RIGHT", "SAMPLE", "SETTINGS", "UNION", "USING", "WHERE", "WINDOW", "PASTE",
    "INTO", "LIKE", "IN", "NOT", "AND", "OR", "EXCEPT", "INTERSECT", "QUALIFY",
}  # fmt: skip
_ALIAS = re.compile(r"\s+(?:AS\s+)?(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def _is_aliased(sql: str, end: int) -> bool:
    alias = _ALIAS.match(sql, end)
    return alias is not None and alias.group(1).upper() not in _NOT_ALIAS


def rename_tables(sql: str, names: dict[str, str]) -> str:
    """``sql`` reading ``names[t]`` (a quoted, maybe qualified, table name) wherever it
    reads table ``t`` (under the name ``t``, unless the user gave it an alias): a
    cluster's views read node-local tables."""
    refs = sorted((r for r in analyze(sql).refs if r.name in names), key=lambda r: r.start)
    out: list[str] = []
    pos = 0
    for ref in refs:
        out.append(sql[pos : ref.start])
        alias = "" if _is_aliased(sql, ref.end) else f" AS `{ref.name}`"
        out.append(f"{names[ref.name]}{alias}")
        pos = ref.end
    out.append(sql[pos:])
    return "".join(out)


def nest(body: str, subs: dict[str, str]) -> str:
    """``body`` with each table name in ``subs`` replaced by ``(its text) AS name`` (the
    alias the user gave it kept), recursively: the form for servers without table CTEs.
    References are found by :func:`rtp.sql.analysis.analyze`, so only table positions
    change; the user's text stays as written."""
    refs = sorted((r for r in analyze(body).refs if r.name in subs), key=lambda r: r.start)
    out: list[str] = []
    pos = 0
    for ref in refs:
        if ref.start < pos:
            continue
        out.append(body[pos : ref.start])
        alias = "" if _is_aliased(body, ref.end) else f" AS `{ref.name}`"
        out.append(f"(\n{nest(subs[ref.name], subs)}\n){alias}")
        pos = ref.end
    out.append(body[pos:])
    return "".join(out)


def compile_project(project: Project, problems: Problems) -> CompiledProject:
    """Compile every pipe, adding template, reference and cycle problems to ``problems``."""
    compiled = CompiledProject(project, {})
    for pipe in project.pipes.values():
        cnodes = []
        for node in pipe.nodes:
            try:
                template = compile_template(node.sql)
            except TemplateError as exc:
                problems.add(_at(exc, node, token=exc.token))
                template = None
            cnodes.append((node, template))
        if any(t is None for _, t in cnodes):
            compiled.broken.add(pipe.name)
            compiled.pipes[pipe.name] = CompiledPipe(
                pipe, [CompiledNode(n, t or Template("")) for n, t in cnodes]
            )
            continue
        compiled.pipes[pipe.name] = CompiledPipe(pipe, [CompiledNode(n, t) for n, t in cnodes])
    for cpipe in compiled.pipes.values():
        if cpipe.name not in compiled.broken:
            _resolve(compiled, cpipe, problems)
    _cycles(compiled, problems)
    return compiled


def _resolve(compiled: CompiledProject, cpipe: CompiledPipe, problems: Problems) -> None:
    project = compiled.project
    values = compiled.sample_values(cpipe.name)
    unparameterized = not isinstance(values, SampleValues)
    earlier: list[str] = []
    all_nodes = [n.node.name for n in cpipe.nodes]
    for cnode in cpipe.nodes:
        try:
            cnode.sample_sql = clean(cnode.template.render(values))
        except RequestError as exc:
            what = (
                "rendering without parameters (as a materialized or copy pipe runs) "
                if unparameterized
                else "rendering with sample values "
            )
            problems.add(
                _at(
                    SqlError(
                        f"{what}failed: {exc.message}",
                        code="RTP301",
                        hint="give the parameter an example= or a default",
                    ),
                    cnode.node,
                )
            )
            compiled.broken.add(cpipe.name)
            return
        cnode.facts = analyze(cnode.sample_sql)
        for ref in cnode.refs:
            if ref.name in earlier:
                continue
            if ref.name == cnode.node.name:
                problems.add(
                    _ref_problem(cnode, ref, f"node '{ref.name}' reads itself", "RTP303", None)
                )
                compiled.broken.add(cpipe.name)
            elif ref.name in all_nodes:
                problems.add(
                    _ref_problem(
                        cnode,
                        ref,
                        f"node '{ref.name}' is defined after this node",
                        "RTP302",
                        "a node can read only the nodes above it; move it up",
                    )
                )
                compiled.broken.add(cpipe.name)
            elif project.resource(ref.name) is not None:
                if ref.name == cpipe.name:
                    problems.add(
                        _ref_problem(cnode, ref, f"pipe '{ref.name}' reads itself", "RTP303", None)
                    )
                    compiled.broken.add(cpipe.name)
                    continue
                cpipe.reads.setdefault(ref.name, ref)
            else:
                names = [*project.datasources, *project.pipes, *earlier]
                close = difflib.get_close_matches(ref.name, names, n=1)
                problems.add(
                    _ref_problem(
                        cnode,
                        ref,
                        f"'{ref.name}' is not a datasource, pipe or earlier node",
                        "RTP302",
                        (f"did you mean '{close[0]}'? " if close else "")
                        + "datasources live in datasources/<name>.yaml",
                    )
                )
                compiled.broken.add(cpipe.name)
        earlier.append(cnode.node.name)


def _cycles(compiled: CompiledProject, problems: Problems) -> None:
    """Pipes reading pipes in a circle, or materialized/copy pipes feeding what they read."""
    graph: dict[str, list[str]] = {}
    for cpipe in compiled.pipes.values():
        graph.setdefault(cpipe.name, []).extend(cpipe.reads)
        target = cpipe.pipe.target
        if target and cpipe.pipe.type == "materialized":
            graph.setdefault(target, []).append(cpipe.name)
    state: dict[str, int] = {}
    stack: list[str] = []
    reported: set[frozenset] = set()

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in graph.get(name, []):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    _report_cycle(compiled, [*cycle, dep], problems)
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _report_cycle(compiled: CompiledProject, cycle: list[str], problems: Problems) -> None:
    # cycle reads backwards along "reads" edges; show it in data-flow order
    flow = " -> ".join(reversed(cycle))
    first_pipe = next((n for n in cycle if n in compiled.pipes), cycle[0])
    cpipe = compiled.pipes[first_pipe]
    for name in cycle:
        compiled.broken.add(name)
    loc = cpipe.pipe.loc("nodes")
    for cnode in cpipe.nodes:
        hit = next((r for r in cnode.refs if r.name in cycle), None)
        if hit:
            loc = locate(cnode, hit.start, hit.end - hit.start, token=hit.name)
            break
    problems.add(
        SqlError(
            f"dependency cycle: {flow}",
            code="RTP303",
            location=loc,
            hint="a pipe can't read itself through other pipes or its target",
        )
    )


# -- locations -------------------------------------------------------------------------


def locate(
    cnode: CompiledNode,
    offset: int,
    length: int = 1,
    token: str | None = None,
    rendered: str | None = None,
) -> Location:
    """Map an offset in a node's rendered SQL back to the user's file.

    Rendering keeps line breaks outside ``{% %}`` blocks, so the rendered line is the
    template line; the token is then searched on that line (else anywhere) so the column
    points at the user's text even when a ``{{ }}`` before it changed length.
    """
    rendered = cnode.sample_sql if rendered is None else rendered
    source = cnode.template.source or cnode.node.sql
    origin = cnode.node.origin
    line_index = rendered.count("\n", 0, max(0, offset))
    lines = source.split("\n")
    line_index = min(line_index, len(lines) - 1)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    if token:
        pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])")
        found = pattern.search(lines[line_index])
        if found:
            return origin.locate(source, starts[line_index] + found.start(), len(token))
        found = pattern.search(source)
        if found:
            return origin.locate(source, found.start(), len(token))
    col = offset - (rendered.rfind("\n", 0, offset) + 1)
    col = max(0, min(col, len(lines[line_index])))
    return origin.locate(source, starts[line_index] + col, length)


def _at(exc: TemplateError | SqlError, node: Node, token: str | None = None) -> SqlError:
    source = node.sql
    lines = source.split("\n")
    line = getattr(exc, "line", 0) or 1
    line = min(line, len(lines))
    offset = sum(len(x) + 1 for x in lines[: line - 1])
    length = 1
    if token:
        found = re.search(rf"\b{re.escape(token)}\b", lines[line - 1])
        if found:
            offset += found.start()
            length = len(token)
    else:
        offset += len(lines[line - 1]) - len(lines[line - 1].lstrip())
    exc.location = node.origin.locate(source, offset, length)
    return exc


def _ref_problem(
    cnode: CompiledNode, ref: TableRef, message: str, code: str, hint: str | None
) -> SqlError:
    return SqlError(
        message,
        code=code,
        hint=hint,
        location=locate(cnode, ref.start, ref.end - ref.start, token=ref.name),
    )
