"""Read a project's files into the model, collecting every problem on the way.

``load_project(root)`` returns the project and the problems found; a file with problems
is still read as far as it can be, so one run of ``rtp check`` reports everything.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import replace
from pathlib import Path

from rtp.errors import Location, Problems, ProjectError, RtpError, SchemaError
from rtp.project.connections import check_references, read_connection, read_kafka
from rtp.project.model import (
    ENGINES,
    REQUIRED_ENGINE_OPTIONS,
    Cache,
    Column,
    Connection,
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

# first URL segments the server uses itself; a static folder can't take them
RESERVED_PATHS = {"v0", "docs", "healthz", "metrics", "openapi.json"}
STATIC_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


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
            if rel in skip or any((path / m).is_file() for m in (PROJECT_FILE, *TINYBIRD_MARKERS)):
                continue
            yield from (p for p in _walk(path) if _rel_any(root, p.parent) not in skip)


def _rel_any(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _datafiles(root: Path, skip: set[str] = frozenset()):
    return (p for p in _walk(root, skip) if p.suffix in DATAFILES)


def _is_forward(root: Path) -> bool:
    """Tinybird Forward's layout: its tinyb file or its resource-type folders."""
    return any((root / m).is_file() for m in TINYBIRD_MARKERS) or any(
        (root / d).is_dir() for d in ("materializations", "copies", "connections", "sinks")
    )


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
            raise ProjectError(
                f"no {PROJECT_FILE} found in {root}",
                code="RTP100",
                hint="pass the folder that holds the project's files",
            )
        name = re.sub(r"\W", "_", root.name)
        name = name if NAME_RE.match(name) else f"_{name}"
        settings = Settings(name=name)
        problems.add(
            ProjectError(
                f"no {PROJECT_FILE}: read as a Tinybird project named '{name}' (its folder)",
                code="RTP100",
                location=Location(root.name),
                severity="warning",
                hint=f"create {PROJECT_FILE} (`name: {name}`) to name it and choose targets",
            )
        )
    datasources: dict[str, Datasource] = {}
    pipes: dict[str, Pipe] = {}
    seen: dict[str, str] = {}
    forward = _is_forward(root)
    skip = {settings.tests_dir.strip("/"), settings.fixtures_dir.strip("/")}
    files: list[Path] = []
    connection_files: list[Path] = []
    for kind in ("datasources", "pipes"):
        folder = root / kind
        if folder.is_dir():
            files += [
                p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".yaml", ".yml")
            ]
    for path in _walk(root, skip):
        if path.suffix in DATAFILES:
            files.append(path)
        elif path.suffix == ".connection":
            connection_files.append(path)
    if (root / "connections").is_dir():
        connection_files += [
            p
            for p in sorted((root / "connections").iterdir())
            if p.is_file() and p.suffix == ".yaml"
        ]
    connections = _read_connections(root, connection_files, problems)
    for path in files:
        reader, into = (
            (_read_datasource, datasources)
            if path.suffix == ".datasource"
            or path.parent.name == "datasources"
            and path.suffix != ".pipe"
            else (_read_pipe, pipes)
        )
        if path.suffix == ".yml":
            problems.add(
                ProjectError(
                    "rtp reads .yaml files only",
                    code="RTP106",
                    location=Location(_rel(root, path)),
                    hint=f"rename it to {path.stem}.yaml",
                )
            )
            continue
        rel = _rel(root, path)
        name = path.stem
        if not NAME_RE.match(name):
            problems.add(
                ProjectError(
                    f"'{name}' is not a valid name",
                    code="RTP106",
                    location=Location(rel),
                    hint="file names become table and endpoint names: use letters, digits "
                    "and underscores, starting with a letter",
                )
            )
            continue
        if name in seen:
            problems.add(
                ProjectError(
                    f"'{name}' is defined twice: here and in {seen[name]}",
                    code="RTP105",
                    location=Location(rel),
                    hint="datasources and pipes share one namespace; rename one of them",
                )
            )
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
    if (
        not datasources
        and not pipes
        and not any(
            p.location and p.location.file.endswith((".yaml", *DATAFILES)) for p in problems
        )
    ):
        problems.add(
            ProjectError(
                f"found no datasources or pipes in {root.name}",
                code="RTP100",
                location=Location(PROJECT_FILE if (root / PROJECT_FILE).is_file() else root.name),
                hint="datasources/*.yaml and pipes/*.yaml, or Tinybird .datasource and .pipe "
                "files anywhere in the folder",
            )
        )
    check_references(datasources, connections, problems)
    return Project(root, settings, datasources, pipes, connections), problems


def _read_connections(root: Path, paths: list[Path], problems: Problems) -> dict[str, Connection]:
    """Kafka connections by name (file stem); a name used twice keeps the first."""
    connections: dict[str, Connection] = {}
    for path in paths:
        rel = _rel(root, path)
        if path.stem in connections:
            problems.add(
                ProjectError(
                    f"connection '{path.stem}' is defined twice: here and in "
                    f"{connections[path.stem].file}",
                    code="RTP105",
                    location=Location(rel),
                )
            )
            continue
        connection = read_connection(path, rel, problems)
        if connection is not None:
            connections[path.stem] = connection
    return connections


def _datafile(path: Path, rel: str, root: Path, forward: bool = False):
    """A Tinybird ``.datasource`` or ``.pipe`` file, read into the same form as YAML (a
    :class:`rtp.project.tinybird.Datafile`: the Doc, its TOKEN lines and warnings)."""
    from rtp.project import tinybird

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(
            f"file is not UTF-8 text ({exc.reason})", code="RTP101", location=Location(rel)
        ) from None
    if path.suffix == ".datasource":
        return tinybird.parse_datasource(text, rel, path=path, root=root)
    return tinybird.parse_pipe(text, rel, path=path, root=root, forward=forward)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# -- structure: the pydantic pass ------------------------------------------------------


def _validate(model: type, doc: Doc, data, problems: Problems, *, item_lists=()):
    """Validate ``data`` against ``model`` (one of :mod:`rtp.project.schema`'s files),
    report each error at its place in ``doc`` the way rtp words it, and return the
    validated file plus, for each list of named items, the original index of each item
    kept. Returns ``(None, {})`` when the file as a whole is not a mapping.

    What fails is treated as absent and validation runs again on the rest, so the model
    holds whatever could be read: a wrong optional value reads as unset, a broken or
    nameless item of ``columns``/``indexes``/``nodes`` is left out, a name used twice
    keeps its first item.
    """
    from pydantic import ValidationError

    try:
        file, errors = model.model_validate(data), []
    except ValidationError as exc:
        file, errors = None, exc.errors(include_url=False)
    # rtp's order at one place: unknown keys, then missing ones by name, then the rest
    rank = {"extra_forbidden": 0, "invalid_key": 0, "missing": 1}
    errors.sort(
        key=lambda e: (rank.get(e["type"], 2), str(e["loc"][-1]) if e["type"] == "missing" else "")
    )
    for err in errors:
        problems.add(_problem(model, doc, err))
    if any(not err["loc"] for err in errors):
        return None, {}
    repeated = _repeated_names(model, doc, data, errors, item_lists, problems)
    if file is not None and not repeated:
        return file, {f: list(range(len(data.get(f) or ()))) for f in item_lists}
    data, kept = _prune(model, data, errors, item_lists, repeated)
    try:
        return model.model_validate(data), kept
    except ValidationError as exc:  # pruning missed something: report it, read nothing
        for err in exc.errors(include_url=False):
            problems.add(_problem(model, doc, err))
        return None, {}


def _problem(model: type, doc: Doc, err: dict) -> RtpError:
    from rtp.project import schema

    loc, etype, ctx, value = tuple(err["loc"]), err["type"], err.get("ctx") or {}, err["input"]
    if etype in ("extra_forbidden", "invalid_key"):
        key = loc[-1] if etype == "extra_forbidden" else value
        container, *_ = _at(model, loc[:-1])
        allowed = sorted(f.alias or n for n, f in container.model_fields.items())
        close = difflib.get_close_matches(str(key), allowed, n=1)
        return ProjectError(
            f"unknown key '{key}' in {container.what}",
            code="RTP102",
            location=doc.loc((*loc[:-1], key), key=True),
            hint=f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}",
        )
    if etype == "missing":
        container, *_ = _at(model, loc[:-1])
        return ProjectError(
            f"{container.what} is missing the required key '{loc[-1]}'",
            code="RTP103",
            location=doc.loc(loc[:-1]),
        )
    here, title, field, extra = _at(model, loc)
    if extra and field in schema.ITEM_WHAT:
        what = schema.ITEM_WHAT[field].format(key=extra[0])
    elif extra:
        what = f"{title} item"
    else:
        what = title
    location = doc.loc(loc)
    if etype in ("model_type", "dict_type", "rtp_mapping"):
        what = here.mapping_what if here is not None else what
        return ProjectError(
            f"{what} must be a mapping of keys to values, not {schema.kind_of(value)}",
            code="RTP104",
            location=location,
        )
    if etype == "list_type":
        return ProjectError(f"{field} must be a list", code="RTP104", location=location)
    if etype == "rtp_text":
        return ProjectError(
            f"{what} must be text, not {ctx['kind']}", code="RTP104", location=location
        )
    if etype == "rtp_exprs":
        return ProjectError(
            f"{what} must be a list of expressions, not {ctx['kind']}",
            code="RTP104",
            location=location,
        )
    if etype == "rtp_name":
        return ProjectError(
            f"{what} '{ctx['name']}' is not a valid name",
            code="RTP106",
            location=location,
            hint=schema.NAME_HINT,
        )
    if etype == "rtp_flag":
        return ProjectError(f"{what} must be true or false", code="RTP104", location=location)
    if etype == "rtp_granularity":
        return SchemaError(
            f"{what} must be a positive whole number", code="RTP204", location=location
        )
    if etype == "rtp_setting":
        return ProjectError(
            f"server.{what} {err['msg']}",
            code="RTP107",
            location=location,
            hint=f"server settings: {schema.SERVER_DOC}",
        )
    if etype == "rtp_choice":
        return ProjectError(err["msg"], code="RTP107", location=location, hint=ctx.get("hint"))
    # a rule the models gained without a wording here: still located, never a traceback
    return ProjectError(f"{what or 'this value'}: {err['msg']}", code="RTP104", location=location)


def _at(model: type, loc: tuple):
    """What sits at ``loc`` of a file validated by ``model``: ``(model class or None,
    title of the last field passed, that field's name, path below that field)``."""
    from pydantic import BaseModel

    here, title, field, extra, items = model, None, None, (), None
    for seg in loc:
        info = _field(here, seg) if here is not None else None
        if info is not None:
            title, field, extra = info.title, info.alias or seg, ()
            inner = _model_in(info.annotation, BaseModel)
            is_list = "list[" in str(info.annotation)
            here, items = (None, inner) if is_list else (inner, None)
        elif items is not None and isinstance(seg, int):
            here, items, extra = items, None, (seg,)
        else:
            here, items, extra = None, None, (*extra, seg)
    return here, title, field, extra


def _field(model: type, key):
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def _model_in(annotation, base: type):
    if isinstance(annotation, type) and issubclass(annotation, base):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg, base)
        if found is not None:
            return found
    return None


def _repeated_names(
    model: type, doc: Doc, data: dict, errors: list, item_lists, problems: Problems
) -> set[tuple]:
    """Items of ``columns``/``indexes``/``nodes`` whose valid name an earlier item has:
    each is reported (RTP105) and left out."""
    failed = {tuple(e["loc"]) for e in errors}
    repeated: set[tuple] = set()
    for field in item_lists:
        raw = data.get(field)
        if not isinstance(raw, list):
            continue
        what = _at(model, (field, 0))[0].what
        seen: set[str] = set()
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or (field, i) in failed:
                continue
            name = item.get("name")
            if (field, i, "name") in failed or not isinstance(name, str):
                continue
            if name in seen:
                problems.add(
                    ProjectError(
                        f"{what} '{name}' is defined twice",
                        code="RTP105",
                        location=doc.loc((field, i, "name")),
                    )
                )
                repeated.add((field, i))
            seen.add(name)
    return repeated


def _prune(model: type, data: dict, errors: list, item_lists, repeated: set[tuple]):
    """A copy of ``data`` without what failed (see :func:`_validate`) and without the
    ``repeated`` items, and the original index of each named item kept."""
    data = copy.deepcopy(data)
    dropped = set(repeated)
    deletions: list[tuple] = []
    for err in errors:
        loc, etype = tuple(err["loc"]), err["type"]
        if etype == "invalid_key":
            deletions.append((*loc[:-1], err["input"]))
            continue
        if loc[0] in item_lists and len(loc) >= 2:
            item_model = _at(model, loc[:2])[0]
            info = _field(item_model, loc[2]) if len(loc) == 3 else None
            if len(loc) == 3 and (
                etype == "extra_forbidden" or (info is not None and not info.is_required())
            ):
                deletions.append(loc)  # an unknown key or a wrong optional value
            else:
                dropped.add(loc[:2])
            continue
        info = _field(model, loc[0]) if len(loc) == 1 else None
        if info is not None and info.is_required():
            data[loc[0]] = None
        elif etype != "missing":
            deletions.append(loc)
    for loc in sorted(
        deletions, key=lambda p: [str(type(x)) + str(x).zfill(9) for x in p], reverse=True
    ):
        parent = data
        for seg in loc[:-1]:
            parent = parent[seg]
        del parent[loc[-1]]
    kept = {}
    for field in item_lists:
        raw = data.get(field)
        if isinstance(raw, list):
            kept[field] = [i for i in range(len(raw)) if (field, i) not in dropped]
            data[field] = [raw[i] for i in kept[field]]
    return data, kept


def _text(doc: Doc, path: tuple, value, problems: Problems, *, what: str) -> str | None:
    """A value read as text (numbers too), for the few checked outside the models."""
    from rtp.project.schema import kind_of

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(
            ProjectError(
                f"{what} must be text, not {kind_of(value)}", code="RTP104", location=doc.loc(path)
            )
        )
        return None
    return str(value)


def _text_list(doc: Doc, path: tuple, value, problems: Problems, *, what: str):
    from rtp.project.schema import kind_of

    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        problems.add(
            ProjectError(
                f"{what} must be a list of expressions, not {kind_of(value)}",
                code="RTP104",
                location=doc.loc(path),
            )
        )
        return ()
    out = (
        _text(doc, (*path, i), item, problems, what=f"{what} item") for i, item in enumerate(value)
    )
    return tuple(s for s in out if s is not None)


# -- rtp.yaml ---------------------------------------------------------------------------


def server_errors(settings: Settings) -> list[RtpError]:
    """The problems of ``server:`` in rtp.yaml, at their line and column (``rtp serve``
    refuses to start on them rather than serve with a default the file didn't ask for)."""
    from pydantic import ValidationError

    from rtp.project.schema import ProjectFile

    doc = settings.doc
    raw = doc.data.get("server") if doc is not None and isinstance(doc.data, dict) else None
    if raw is None:
        return []
    try:
        ProjectFile.model_validate({"name": "_", "server": raw})
    except ValidationError as exc:
        return [_problem(ProjectFile, doc, err) for err in exc.errors(include_url=False)]
    return []


def _read_settings(root: Path, problems: Problems) -> Settings:
    from rtp.project.schema import ProjectFile

    fallback = Settings(name=root.name)
    try:
        doc = load_yaml(root / PROJECT_FILE, PROJECT_FILE)
    except RtpError as exc:
        problems.add(exc)
        return fallback
    file, _ = _validate(ProjectFile, doc, doc.data if doc.data is not None else {}, problems)
    if file is None:
        return fallback
    targets = [Target("embedded", "embedded")]
    for tname, spec in (file.targets or {}).items():
        if spec is None:
            continue
        url = spec if isinstance(spec, str) else target_url(spec)
        if url != "embedded" and not url.startswith(("clickhouse://", "clickhouses://")):
            problems.add(
                ProjectError(
                    f"target '{tname}' must be 'embedded' or a clickhouse:// URL",
                    code="RTP107",
                    location=doc.loc(("targets", tname)),
                    hint="e.g. clickhouse://default:secret@127.0.0.1:9000/shop",
                )
            )
            continue
        targets = [t for t in targets if t.name != tname] + [Target(str(tname), url)]
    default = file.default_target or "embedded"
    if default not in {t.name for t in targets}:
        problems.add(
            ProjectError(
                f"default_target '{default}' is not one of the targets",
                code="RTP107",
                location=doc.loc(("default_target",)),
                hint=f"targets: {', '.join(t.name for t in targets)}",
            )
        )
        default = "embedded"
    return Settings(
        name=file.name or root.name,
        description=file.description or "",
        targets=tuple(targets),
        default_target=default,
        tests_dir=file.tests_dir or "tests",
        fixtures_dir=file.fixtures_dir or "fixtures",
        static=_read_static(root, doc, file.static, problems),
        server=file.server.values() if file.server else {},
        deploy_keep=(file.deploy.keep if file.deploy and file.deploy.keep else 2),
        doc=doc,
    )


def _read_static(root: Path, doc: Doc, static, problems: Problems) -> tuple[tuple[str, str], ...]:
    """``static: {storefront: examples/storefront}``: folders served at ``/<name>/``."""
    out = []
    for name, folder in (static or {}).items():
        path = ("static", name)
        if folder is None:
            continue
        name = str(name)
        if not STATIC_NAME_RE.match(name) or name in RESERVED_PATHS:
            problems.add(
                ProjectError(
                    f"'{name}' can't be a URL path for static files",
                    code="RTP106",
                    location=doc.loc(path, key=True),
                    hint="use letters, digits, '-', '_' and '.'; v0, docs, healthz and "
                    "metrics are the server's own",
                )
            )
            continue
        if not (root / folder).is_dir():
            problems.add(
                ProjectError(
                    f"static folder '{folder}' does not exist",
                    code="RTP107",
                    location=doc.loc(path),
                    hint="a folder relative to rtp.yaml",
                )
            )
            continue
        out.append((name, folder))
    return tuple(out)


# -- datasources ------------------------------------------------------------------------


def _read_datasource(name: str, doc: Doc, problems: Problems) -> Datasource | None:
    from rtp.project.schema import DatasourceFile

    file, kept = _validate(
        DatasourceFile, doc, doc.data, problems, item_lists=("columns", "indexes")
    )
    if file is None:
        return None
    if doc.data.get("columns") == []:
        problems.add(
            ProjectError(
                "a datasource needs at least one column",
                code="RTP103",
                location=doc.loc(("columns",)),
            )
        )
    columns: list[Column] = []
    for i, col in zip(kept.get("columns", ()), file.columns or (), strict=True):
        if col.name is None or col.type is None:
            continue
        path = ("columns", i)
        if col.json_ is not None and not col.json_.startswith("$"):
            problems.add(
                ProjectError(
                    f"json path '{col.json_}' must start with '$'",
                    code="RTP107",
                    location=doc.loc((*path, "json")),
                    hint="e.g. $.user.id",
                )
            )
        columns.append(
            Column(
                name=col.name,
                type=col.type.strip(),
                json_path=col.json_ or f"$.{col.name}",
                default=col.default,
                codec=col.codec,
                comment=col.comment,
                path=path,
            )
        )
    indexes = [
        Index(idx.name, idx.expr, idx.type, idx.granularity, ("indexes", i))
        for i, idx in zip(kept.get("indexes", ()), file.indexes or (), strict=True)
        if idx.name and idx.expr and idx.type
    ]
    return Datasource(
        name=name,
        file=doc.file,
        columns=tuple(columns),
        engine=_read_engine(doc, file.engine, problems),
        sorting_key=tuple(k for k in file.sorting_key if k is not None),
        primary_key=tuple(k for k in file.primary_key if k is not None),
        partition_key=file.partition_key,
        ttl=file.ttl,
        settings=tuple((str(k), v) for k, v in (file.settings or {}).items()),
        indexes=tuple(indexes),
        description=file.description or "",
        doc=doc,
        kafka=read_kafka(doc, file, problems),
        forward_query=file.forward_query,
        shard_key=file.shard_key,
    )


def target_url(spec) -> str:
    """A mapping target as one URL: its cluster options become the URL's query
    (``?cluster=name``), the form ``--target`` and ``RTP_CLICKHOUSE_URL`` take too."""
    from urllib.parse import urlencode

    options = {
        k: getattr(spec, k)
        for k in ("cluster", "zookeeper_path", "replica")
        if getattr(spec, k) is not None
    }
    if not options:
        return spec.url
    return spec.url + ("&" if "?" in spec.url else "?") + urlencode(options)


def _read_engine(doc: Doc, spec, problems: Problems) -> Engine:
    """``engine: MergeTree`` or ``engine: {type: ReplacingMergeTree, ver: updated_at}``:
    the models read the shape; which options each engine takes is checked here."""
    if spec is None:
        return Engine()
    type_path = ("engine",) if isinstance(doc.data.get("engine"), str) else ("engine", "type")
    etype = spec.type
    if etype is None:
        problems.add(
            ProjectError(
                "engine is missing the required key 'type'",
                code="RTP103",
                location=doc.loc(("engine",)),
            )
        )
        return Engine()
    if etype not in ENGINES:
        close = difflib.get_close_matches(etype, list(ENGINES), n=1)
        problems.add(
            SchemaError(
                f"unknown engine '{etype}'",
                code="RTP201",
                location=doc.loc(type_path),
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + f"supported: {', '.join(ENGINES)}",
            )
        )
        return Engine()
    allowed = set(ENGINES[etype])
    options = []
    for key, value in (spec.model_extra or {}).items():
        if key not in allowed:
            problems.add(
                SchemaError(
                    f"{etype} has no option '{key}'",
                    code="RTP202",
                    location=doc.loc(("engine", key), key=True),
                    hint=f"{etype} takes: {', '.join(ENGINES[etype]) or 'no options'}",
                )
            )
            continue
        if key == "columns":
            cols = _text_list(doc, ("engine", key), value, problems, what="columns")
            options.append((key, ", ".join(cols)))
            continue
        sval = _text(doc, ("engine", key), value, problems, what=f"engine option {key}")
        if sval is not None:
            options.append((key, sval))
    for req in REQUIRED_ENGINE_OPTIONS.get(etype, ()):
        if req not in dict(options):
            problems.add(
                SchemaError(
                    f"{etype} needs the option '{req}'",
                    code="RTP202",
                    location=doc.loc(("engine",)),
                    hint=f"write engine: {{type: {etype}, {req}: <column>}}",
                )
            )
    return Engine(etype, tuple(options))


# -- pipes ------------------------------------------------------------------------------


_CRON_WORDS = (
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
)  # croniter's; @on-demand means no schedule


def _schedule_error(schedule: str) -> str | None:
    """Why croniter can't run ``schedule`` (None when it can): the server runs exactly
    what passed here (rtp.deploy.copy.next_run)."""
    import datetime as dt

    from croniter import croniter

    fields = schedule.split()
    if schedule.startswith("@"):
        if schedule.lower() not in _CRON_WORDS:
            return f"unknown shortcut, use one of {', '.join(_CRON_WORDS)}"
    elif len(fields) not in (5, 6):
        return f"{len(fields)} fields, expected 5 (or 6 with seconds)"
    try:
        croniter(schedule, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)).get_next()
    except Exception as exc:  # croniter: bad expression, or a date that never comes
        return str(exc)
    return None


def _read_pipe(name: str, doc: Doc, problems: Problems) -> Pipe | None:
    from rtp.project.schema import PipeFile

    file, kept = _validate(PipeFile, doc, doc.data, problems, item_lists=("nodes",))
    if file is None:
        return None
    data = doc.data
    ptype = file.type or "endpoint"
    target = file.target
    if ptype in ("materialized", "copy") and target is None and "target" not in data:
        problems.add(
            ProjectError(
                f"a {ptype} pipe needs a target datasource",
                code="RTP103",
                location=doc.loc(("type",)),
                hint="add `target: <datasource name>`",
            )
        )
    if ptype not in ("materialized", "copy") and "target" in data:
        problems.add(
            ProjectError(
                f"only materialized and copy pipes have a target, this one is {ptype}",
                code="RTP107",
                location=doc.loc(("target",), key=True),
            )
        )
    for key in ("schedule", "mode"):
        if key in data and ptype != "copy":
            problems.add(
                ProjectError(
                    f"'{key}' applies to copy pipes only",
                    code="RTP107",
                    location=doc.loc((key,), key=True),
                )
            )
    schedule = file.schedule
    if schedule is not None and schedule.strip().lower() in ("@on-demand", "@on_demand"):
        schedule = None  # Tinybird's word for "run only when asked"
    if schedule is not None and ptype == "copy":
        error = _schedule_error(schedule)
        if error:
            problems.add(
                ProjectError(
                    f"schedule {schedule!r} is not a cron expression: {error}",
                    code="RTP107",
                    location=doc.loc(("schedule",)),
                    hint="5 fields, UTC (minute hour day month weekday: '*/15 * * * *', "
                    "'0 3 * * mon-fri'), a 6th for seconds, @hourly, @daily or @on-demand",
                )
            )
            schedule = None
    if data.get("nodes") == []:
        problems.add(
            ProjectError(
                "nodes must be a non-empty list of {name, sql}",
                code="RTP104",
                location=doc.loc(("nodes",)),
            )
        )
    if file.cache is not None and ptype != "endpoint":
        problems.add(
            ProjectError(
                f"'cache' applies to endpoint pipes only, this one is {ptype}",
                code="RTP107",
                location=doc.loc(("cache",), key=True),
                hint="cache a node that reads no parameter instead (its own `cache:`)",
            )
        )
    nodes = [
        Node(
            name=node.name,
            sql=node.sql,
            description=node.description or "",
            origin=doc.origin(("nodes", i, "sql")),
            path=("nodes", i),
            cache=_cache(node.cache, ptype, doc, ("nodes", i), problems),
        )
        for i, node in zip(kept.get("nodes", ()), file.nodes or (), strict=True)
        if node.name is not None and node.sql is not None
    ]
    if not nodes:
        return None
    return Pipe(
        name=name,
        file=doc.file,
        nodes=tuple(nodes),
        type=ptype,
        target=target,
        schedule=schedule,
        mode=file.mode or "append",
        populate=file.populate,
        description=file.description or "",
        doc=doc,
        cache=Cache(file.cache.ttl) if file.cache is not None and ptype == "endpoint" else None,
    )


def _cache(spec, ptype: str, doc: Doc, path: tuple, problems: Problems) -> Cache | None:
    """A node's ``cache:``; refused (RTP107) in a materialized or copy pipe, whose
    nodes run inside the engine, not per request."""
    if spec is None:
        return None
    if ptype in ("materialized", "copy"):
        problems.add(
            ProjectError(
                f"a node's 'cache' applies to endpoint and internal pipes, this one is {ptype}",
                code="RTP107",
                location=doc.loc((*path, "cache"), key=True),
            )
        )
        return None
    return Cache(spec.ttl)
