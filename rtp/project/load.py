"""Read a project's files into the model, collecting every problem on the way.

``load_project(root)`` returns the project and the problems found; a file with problems
is still read as far as it can be, so one run of ``rtp check`` reports everything.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path

from rtp.errors import Location, Problems, ProjectError, RtpError, SchemaError
from rtp.project.model import (
    COPY_MODES,
    ENGINES,
    PIPE_TYPES,
    REQUIRED_ENGINE_OPTIONS,
    Column,
    Datasource,
    Engine,
    Index,
    Node,
    Pipe,
    Project,
    Settings,
    Target,
)
from rtp.project.source import Doc, load_yaml

PROJECT_FILE = "rtp.yaml"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SETTINGS_KEYS = {
    "name", "description", "targets", "default_target", "tests_dir", "fixtures_dir", "static",
}
# first URL segments the server uses itself; a static folder can't take them
RESERVED_PATHS = {"v0", "docs", "healthz", "metrics", "openapi.json"}
STATIC_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
DATASOURCE_KEYS = {
    "description", "columns", "engine", "sorting_key", "primary_key", "partition_key",
    "ttl", "settings", "indexes",
}
COLUMN_KEYS = {"name", "type", "json", "default", "codec", "comment"}
INDEX_KEYS = {"name", "expr", "type", "granularity"}
PIPE_KEYS = {"description", "nodes", "type", "target", "schedule", "mode", "populate"}
NODE_KEYS = {"name", "sql", "description"}


TINYBIRD_MARKERS = ("tinyb", ".tinyb")  # Tinybird CLI's project file (Forward, Classic)
DATAFILES = (".datasource", ".pipe")
# folders never searched for datafiles: tools' own, and nested projects (own rtp.yaml/tinyb)
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``rtp.yaml``; else the nearest
    holding Tinybird's ``tinyb``/``.tinyb`` file; else ``start`` itself when it holds
    Tinybird datafiles (a project read without ``rtp.yaml``, named after its folder).

    Raises ProjectError (RTP100) when there is none.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    for folder in (start, *start.parents):
        if any((folder / m).is_file() for m in TINYBIRD_MARKERS):
            return folder
    if start.is_dir() and next(_datafiles(start), None) is not None:
        return start
    raise ProjectError(
        f"no {PROJECT_FILE} found in {start} or any folder above it",
        code="RTP100",
        hint="run rtp inside a project, pass --project DIR, or create one with `rtp init`; "
        "a Tinybird project is read from the folder holding its tinyb file or datafiles",
    )


def _walk(root: Path, skip: set[str] = frozenset()):
    """Every file under ``root`` (sorted), skipping hidden folders, ``skip`` (relative
    folder paths) and nested projects."""
    for path in sorted(root.iterdir()):
        if path.is_file():
            yield path
        elif path.is_dir() and not path.name.startswith(".") and path.name not in SKIP_DIRS:
            rel = _rel_any(root, path)
            if rel in skip or any((path / m).is_file() for m in (PROJECT_FILE,
                                                                  *TINYBIRD_MARKERS)):
                continue
            yield from (p for p in _walk(path) if _rel_any(root, p.parent) not in skip)


def _rel_any(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _datafiles(root: Path, skip: set[str] = frozenset()):
    return (p for p in _walk(root, skip) if p.suffix in DATAFILES)


def _is_forward(root: Path) -> bool:
    """Tinybird Forward's layout: its tinyb file or its resource-type folders."""
    return any((root / m).is_file() for m in TINYBIRD_MARKERS) or any(
        (root / d).is_dir() for d in ("materializations", "copies", "connections", "sinks"))


def load_project(root: Path) -> tuple[Project, Problems]:
    """Read ``rtp.yaml``, ``datasources/*.yaml``, ``pipes/*.yaml`` and Tinybird datafiles
    (``.datasource``, ``.pipe``) anywhere under ``root`` (Forward's ``endpoints/``,
    ``materializations/``, ``copies/``... included; not the tests and fixtures folders).

    Never raises for problems in the files: they are returned, and the project holds
    whatever could be read. Raises ProjectError (RTP100) only when ``root`` is no project
    (neither ``rtp.yaml`` nor Tinybird's files).
    """
    root = Path(root).resolve()
    problems = Problems()
    if (root / PROJECT_FILE).is_file():
        settings = _read_settings(root, problems)
    else:
        if find_root(root) != root:
            raise ProjectError(f"no {PROJECT_FILE} found in {root}", code="RTP100",
                               hint="pass the folder that holds the project's files")
        name = re.sub(r"\W", "_", root.name)
        name = name if NAME_RE.match(name) else f"_{name}"
        settings = Settings(name=name)
        problems.add(ProjectError(
            f"no {PROJECT_FILE}: read as a Tinybird project named '{name}' (its folder)",
            code="RTP100", location=Location(root.name), severity="warning",
            hint=f"create {PROJECT_FILE} (`name: {name}`) to name it and choose targets",
        ))
    datasources: dict[str, Datasource] = {}
    pipes: dict[str, Pipe] = {}
    seen: dict[str, str] = {}
    forward = _is_forward(root)
    skip = {settings.tests_dir.strip("/"), settings.fixtures_dir.strip("/")}
    files: list[Path] = []
    for kind in ("datasources", "pipes"):
        folder = root / kind
        if folder.is_dir():
            files += [p for p in sorted(folder.iterdir())
                      if p.is_file() and p.suffix in (".yaml", ".yml")]
    for path in _walk(root, skip):
        if path.suffix in DATAFILES:
            files.append(path)
        elif path.suffix == ".connection":
            problems.add(ProjectError(
                "Tinybird connections (Kafka, S3, GCS...) are not supported by rtp; the "
                "datasources that use this one get no data from it", code="RTP107",
                location=Location(_rel(root, path)), severity="warning",
                hint="feed them through the Events API (POST /v0/events) or `rtp append`",
            ))
    for path in files:
        reader, into = ((_read_datasource, datasources)
                        if path.suffix == ".datasource" or path.parent.name == "datasources"
                        and path.suffix != ".pipe" else (_read_pipe, pipes))
        if path.suffix == ".yml":
            problems.add(ProjectError(
                "rtp reads .yaml files only", code="RTP106",
                location=Location(_rel(root, path)), hint=f"rename it to {path.stem}.yaml",
            ))
            continue
        rel = _rel(root, path)
        name = path.stem
        if not NAME_RE.match(name):
            problems.add(ProjectError(
                f"'{name}' is not a valid name", code="RTP106", location=Location(rel),
                hint="file names become table and endpoint names: use letters, digits "
                "and underscores, starting with a letter",
            ))
            continue
        if name in seen:
            problems.add(ProjectError(
                f"'{name}' is defined twice: here and in {seen[name]}",
                code="RTP105", location=Location(rel),
                hint="datasources and pipes share one namespace; rename one of them",
            ))
            continue
        seen[name] = rel
        tokens: tuple = ()
        try:
            if path.suffix == ".yaml":
                doc = load_yaml(path, rel)
            else:
                datafile = _datafile(path, rel, root, forward)
                doc, tokens = datafile.doc, tuple(datafile.tokens)
                problems.extend(datafile.warnings)
        except RtpError as exc:
            problems.add(exc)
            continue
        item = reader(name, doc, problems)
        if item is not None:
            into[name] = replace(item, tokens=tokens) if tokens else item
    if not datasources and not pipes and not any(p.location and p.location.file.endswith(
            (".yaml", *DATAFILES)) for p in problems):
        problems.add(ProjectError(
            f"found no datasources or pipes in {root.name}", code="RTP100",
            location=Location(PROJECT_FILE if (root / PROJECT_FILE).is_file() else root.name),
            hint="datasources/*.yaml and pipes/*.yaml, or Tinybird .datasource and .pipe "
            "files anywhere in the folder",
        ))
    return Project(root, settings, datasources, pipes), problems


def _datafile(path: Path, rel: str, root: Path, forward: bool = False):
    """A Tinybird ``.datasource`` or ``.pipe`` file, read into the same form as YAML (a
    :class:`rtp.project.tinybird.Datafile`: the Doc, its TOKEN lines and warnings)."""
    from rtp.project import tinybird

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"file is not UTF-8 text ({exc.reason})", code="RTP101",
                           location=Location(rel)) from None
    if path.suffix == ".datasource":
        return tinybird.parse_datasource(text, rel, path=path, root=root)
    return tinybird.parse_pipe(text, rel, path=path, root=root, forward=forward)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# -- shared checks ---------------------------------------------------------------------


def _mapping(doc: Doc, path: tuple, value, what: str, problems: Problems) -> dict | None:
    if isinstance(value, dict):
        return value
    problems.add(ProjectError(
        f"{what} must be a mapping of keys to values, not {_kind(value)}",
        code="RTP104", location=doc.loc(path),
    ))
    return None


def _keys(doc: Doc, path: tuple, data: dict, allowed: set, required: set, what: str,
          problems: Problems) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = (f"did you mean '{close[0]}'?" if close
                    else f"allowed: {', '.join(sorted(allowed))}")
            problems.add(ProjectError(
                f"unknown key '{key}' in {what}", code="RTP102",
                location=doc.loc((*path, key), key=True), hint=hint,
            ))
    for key in sorted(required - set(data)):
        problems.add(ProjectError(
            f"{what} is missing the required key '{key}'", code="RTP103",
            location=doc.loc(path),
        ))


def _str(doc: Doc, path: tuple, value, problems: Problems, *, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(ProjectError(
            f"{what} must be text, not {_kind(value)}", code="RTP104", location=doc.loc(path),
        ))
        return None
    return str(value)


def _str_list(doc: Doc, path: tuple, value, problems: Problems, *, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        problems.add(ProjectError(
            f"{what} must be a list of expressions, not {_kind(value)}",
            code="RTP104", location=doc.loc(path),
        ))
        return ()
    out = []
    for i, item in enumerate(value):
        s = _str(doc, (*path, i), item, problems, what=f"{what} item")
        if s is not None:
            out.append(s)
    return tuple(out)


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number", type(None): "empty"}.get(type(value), "a value")


def _named_items(doc: Doc, key: str, value, allowed: set, required: set, what: str,
                 problems: Problems):
    """Yield ``(path, mapping, name)`` for each entry of a list of named mappings
    (columns, indexes, nodes), reporting wrong shapes, unknown or missing keys, invalid
    names and names used twice."""
    if value is None:
        return
    if not isinstance(value, list):
        problems.add(ProjectError(f"{key} must be a list", code="RTP104",
                                  location=doc.loc((key,))))
        return
    seen: set[str] = set()
    for i, raw in enumerate(value):
        path = (key, i)
        item = _mapping(doc, path, raw, f"a {what}", problems)
        if item is None:
            continue
        _keys(doc, path, item, allowed, required, what, problems)
        name = _name(doc, (*path, "name"), item.get("name"), problems, f"{what} name")
        if name is None:
            continue
        if name in seen:
            problems.add(ProjectError(f"{what} '{name}' is defined twice", code="RTP105",
                                      location=doc.loc((*path, "name"))))
            continue
        seen.add(name)
        yield path, item, name


def _name(doc: Doc, path: tuple, value, problems: Problems, what: str) -> str | None:
    name = _str(doc, path, value, problems, what=what)
    if name is not None and not NAME_RE.match(name):
        problems.add(ProjectError(
            f"{what} '{name}' is not a valid name", code="RTP106", location=doc.loc(path),
            hint="use letters, digits and underscores, starting with a letter or underscore",
        ))
        return None
    return name


# -- rtp.yaml ---------------------------------------------------------------------------


def _read_settings(root: Path, problems: Problems) -> Settings:
    fallback = Settings(name=root.name)
    try:
        doc = load_yaml(root / PROJECT_FILE, PROJECT_FILE)
    except RtpError as exc:
        problems.add(exc)
        return fallback
    data = _mapping(doc, (), doc.data if doc.data is not None else {}, PROJECT_FILE, problems)
    if data is None:
        return fallback
    _keys(doc, (), data, SETTINGS_KEYS, {"name"}, PROJECT_FILE, problems)
    name = _name(doc, ("name",), data.get("name"), problems, "project name") or root.name
    targets = [Target("embedded", "embedded")]
    raw_targets = data.get("targets") or {}
    if _mapping(doc, ("targets",), raw_targets, "targets", problems) is not None:
        for tname, url in raw_targets.items():
            url = _str(doc, ("targets", tname), url, problems, what=f"target '{tname}'")
            if url is None:
                continue
            if url != "embedded" and not url.startswith(("clickhouse://", "clickhouses://")):
                problems.add(ProjectError(
                    f"target '{tname}' must be 'embedded' or a clickhouse:// URL",
                    code="RTP107", location=doc.loc(("targets", tname)),
                    hint="e.g. clickhouse://default:secret@127.0.0.1:9000/shop",
                ))
                continue
            targets = [t for t in targets if t.name != tname] + [Target(str(tname), url)]
    default = _str(doc, ("default_target",), data.get("default_target"), problems,
                   what="default_target") or "embedded"
    if default not in {t.name for t in targets}:
        problems.add(ProjectError(
            f"default_target '{default}' is not one of the targets",
            code="RTP107", location=doc.loc(("default_target",)),
            hint=f"targets: {', '.join(t.name for t in targets)}",
        ))
        default = "embedded"
    return Settings(
        name=name,
        description=_str(doc, ("description",), data.get("description"), problems,
                         what="description") or "",
        targets=tuple(targets),
        default_target=default,
        tests_dir=_str(doc, ("tests_dir",), data.get("tests_dir"), problems,
                       what="tests_dir") or "tests",
        fixtures_dir=_str(doc, ("fixtures_dir",), data.get("fixtures_dir"), problems,
                          what="fixtures_dir") or "fixtures",
        static=_read_static(root, doc, data.get("static"), problems),
        doc=doc,
    )


def _read_static(root: Path, doc: Doc, raw, problems: Problems) -> tuple[tuple[str, str], ...]:
    """``static: {storefront: examples/storefront}``: folders served at ``/<name>/``."""
    if raw is None or _mapping(doc, ("static",), raw, "static", problems) is None:
        return ()
    out = []
    for name, folder in raw.items():
        path = ("static", name)
        folder = _str(doc, path, folder, problems, what=f"static folder '{name}'")
        if folder is None:
            continue
        name = str(name)
        if not STATIC_NAME_RE.match(name) or name in RESERVED_PATHS:
            problems.add(ProjectError(
                f"'{name}' can't be a URL path for static files", code="RTP106",
                location=doc.loc(path, key=True),
                hint="use letters, digits, '-', '_' and '.'; v0, docs, healthz and "
                "metrics are the server's own",
            ))
            continue
        if not (root / folder).is_dir():
            problems.add(ProjectError(
                f"static folder '{folder}' does not exist", code="RTP107",
                location=doc.loc(path), hint="a folder relative to rtp.yaml",
            ))
            continue
        out.append((name, folder))
    return tuple(out)


# -- datasources ------------------------------------------------------------------------


def _read_datasource(name: str, doc: Doc, problems: Problems) -> Datasource | None:
    data = _mapping(doc, (), doc.data, "a datasource file", problems)
    if data is None:
        return None
    _keys(doc, (), data, DATASOURCE_KEYS, {"columns"}, "datasource", problems)
    columns: list[Column] = []
    if data.get("columns") == []:
        problems.add(SchemaError("a datasource needs at least one column", code="RTP103",
                                 location=doc.loc(("columns",))))
    for path, col, cname in _named_items(doc, "columns", data.get("columns"), COLUMN_KEYS,
                                         {"name", "type"}, "column", problems):
        ctype = _str(doc, (*path, "type"), col.get("type"), problems, what="column type")
        if ctype is None:
            continue
        json_path = _str(doc, (*path, "json"), col.get("json"), problems, what="json path")
        if json_path is not None and not json_path.startswith("$"):
            problems.add(SchemaError(
                f"json path '{json_path}' must start with '$'", code="RTP107",
                location=doc.loc((*path, "json")), hint="e.g. $.user.id",
            ))
        columns.append(Column(
            name=cname,
            type=ctype.strip(),
            json_path=json_path or f"$.{cname}",
            default=_str(doc, (*path, "default"), col.get("default"), problems, what="default"),
            codec=_str(doc, (*path, "codec"), col.get("codec"), problems, what="codec"),
            comment=_str(doc, (*path, "comment"), col.get("comment"), problems, what="comment"),
            path=path,
        ))
    engine = _read_engine(doc, data.get("engine"), problems)
    settings = ()
    raw_settings = data.get("settings")
    if raw_settings is not None and _mapping(doc, ("settings",), raw_settings, "settings",
                                             problems) is not None:
        settings = tuple((str(k), v) for k, v in raw_settings.items())
    indexes = []
    for path, idx, iname in _named_items(doc, "indexes", data.get("indexes"), INDEX_KEYS,
                                         {"name", "expr", "type"}, "index", problems):
        expr = _str(doc, (*path, "expr"), idx.get("expr"), problems, what="index expr")
        itype = _str(doc, (*path, "type"), idx.get("type"), problems, what="index type")
        gran = idx.get("granularity", 1)
        if not isinstance(gran, int) or isinstance(gran, bool) or gran < 1:
            problems.add(SchemaError("index granularity must be a positive whole number",
                                     code="RTP204", location=doc.loc((*path, "granularity"))))
            gran = 1
        if iname and expr and itype:
            indexes.append(Index(iname, expr, itype, gran, path))
    return Datasource(
        name=name,
        file=doc.file,
        columns=tuple(columns),
        engine=engine,
        sorting_key=_str_list(doc, ("sorting_key",), data.get("sorting_key"), problems,
                              what="sorting_key"),
        primary_key=_str_list(doc, ("primary_key",), data.get("primary_key"), problems,
                              what="primary_key"),
        partition_key=_str(doc, ("partition_key",), data.get("partition_key"), problems,
                           what="partition_key"),
        ttl=_str(doc, ("ttl",), data.get("ttl"), problems, what="ttl"),
        settings=settings,
        indexes=tuple(indexes),
        description=_str(doc, ("description",), data.get("description"), problems,
                         what="description") or "",
        doc=doc,
    )


def _read_engine(doc: Doc, raw, problems: Problems) -> Engine:
    """``engine: MergeTree`` or ``engine: {type: ReplacingMergeTree, ver: updated_at}``."""
    if raw is None:
        return Engine()
    if isinstance(raw, str):
        raw = {"type": raw}
        type_path = ("engine",)
    else:
        type_path = ("engine", "type")
    data = _mapping(doc, ("engine",), raw, "engine", problems)
    if data is None:
        return Engine()
    etype = _str(doc, type_path, data.get("type"), problems, what="engine type")
    if etype is None:
        problems.add(ProjectError("engine is missing the required key 'type'", code="RTP103",
                                  location=doc.loc(("engine",))))
        return Engine()
    if etype not in ENGINES:
        close = difflib.get_close_matches(etype, list(ENGINES), n=1)
        problems.add(SchemaError(
            f"unknown engine '{etype}'", code="RTP201", location=doc.loc(type_path),
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + f"supported: {', '.join(ENGINES)}",
        ))
        return Engine()
    allowed = set(ENGINES[etype])
    options = []
    for key, value in data.items():
        if key == "type":
            continue
        if key not in allowed:
            problems.add(SchemaError(
                f"{etype} has no option '{key}'", code="RTP202",
                location=doc.loc(("engine", key), key=True),
                hint=f"{etype} takes: {', '.join(ENGINES[etype]) or 'no options'}",
            ))
            continue
        if key == "columns":
            cols = _str_list(doc, ("engine", key), value, problems, what="columns")
            options.append((key, ", ".join(cols)))
            continue
        sval = _str(doc, ("engine", key), value, problems, what=f"engine option {key}")
        if sval is not None:
            options.append((key, sval))
    for req in REQUIRED_ENGINE_OPTIONS.get(etype, ()):
        if req not in dict(options):
            problems.add(SchemaError(
                f"{etype} needs the option '{req}'", code="RTP202",
                location=doc.loc(("engine",)),
                hint=f"write engine: {{type: {etype}, {req}: <column>}}",
            ))
    return Engine(etype, tuple(options))


# -- pipes ------------------------------------------------------------------------------


def _read_pipe(name: str, doc: Doc, problems: Problems) -> Pipe | None:
    data = _mapping(doc, (), doc.data, "a pipe file", problems)
    if data is None:
        return None
    _keys(doc, (), data, PIPE_KEYS, {"nodes"}, "pipe", problems)
    ptype = _str(doc, ("type",), data.get("type"), problems, what="type") or "endpoint"
    if ptype not in PIPE_TYPES:
        close = difflib.get_close_matches(ptype, PIPE_TYPES, n=1)
        problems.add(ProjectError(
            f"unknown pipe type '{ptype}'", code="RTP107", location=doc.loc(("type",)),
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + f"one of: {', '.join(PIPE_TYPES)}",
        ))
        ptype = "endpoint"
    target = _name(doc, ("target",), data.get("target"), problems, "target")
    if ptype in ("materialized", "copy") and target is None and "target" not in data:
        problems.add(ProjectError(
            f"a {ptype} pipe needs a target datasource", code="RTP103",
            location=doc.loc(("type",)), hint="add `target: <datasource name>`",
        ))
    if ptype not in ("materialized", "copy") and "target" in data:
        problems.add(ProjectError(
            f"only materialized and copy pipes have a target, this one is {ptype}",
            code="RTP107", location=doc.loc(("target",), key=True),
        ))
    mode = _str(doc, ("mode",), data.get("mode"), problems, what="mode") or "append"
    if mode not in COPY_MODES:
        problems.add(ProjectError(f"copy mode must be one of {', '.join(COPY_MODES)}",
                                  code="RTP107", location=doc.loc(("mode",))))
    for key in ("schedule", "mode"):
        if key in data and ptype != "copy":
            problems.add(ProjectError(f"'{key}' applies to copy pipes only", code="RTP107",
                                      location=doc.loc((key,), key=True)))
    populate = data.get("populate", False)
    if not isinstance(populate, bool):
        problems.add(ProjectError("populate must be true or false", code="RTP104",
                                  location=doc.loc(("populate",))))
        populate = False
    nodes: list[Node] = []
    raw_nodes = data.get("nodes")
    if raw_nodes == []:
        problems.add(ProjectError("nodes must be a non-empty list of {name, sql}",
                                  code="RTP104", location=doc.loc(("nodes",))))
    for path, node, nname in _named_items(doc, "nodes", raw_nodes, NODE_KEYS,
                                          {"name", "sql"}, "node", problems):
        sql = _str(doc, (*path, "sql"), node.get("sql"), problems, what="sql")
        if sql is None:
            continue
        nodes.append(Node(
            name=nname, sql=sql,
            description=_str(doc, (*path, "description"), node.get("description"), problems,
                             what="description") or "",
            origin=doc.origin((*path, "sql")), path=path,
        ))
    if not nodes:
        return None
    return Pipe(
        name=name, file=doc.file, nodes=tuple(nodes), type=ptype, target=target,
        schedule=_str(doc, ("schedule",), data.get("schedule"), problems, what="schedule"),
        mode=mode, populate=populate,
        description=_str(doc, ("description",), data.get("description"), problems,
                         what="description") or "",
        doc=doc,
    )
