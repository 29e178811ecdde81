"""Run by the `tinybird` package's own Python (the oracle venv), never imported by rtp:
prints, as JSON, what Tinybird's parser and template engine make of each pipe file
given on the command line: nodes (name, SQL), parameters, and each node rendered in
Tinybird's test mode with the values read as JSON from stdin ({path: {name: text}};
a name without a value gets Tinybird's placeholder or default)."""

import json
import sys
import warnings

warnings.filterwarnings("ignore")

from tinybird.datafile.parse_pipe import parse_pipe  # noqa: E402
from tinybird.sql_template import Template, get_var_names_and_types, render_sql_template  # noqa: E402


def dump(path: str, values: dict) -> dict:
    try:
        doc = parse_pipe(path, skip_eval=True).datafile
    except Exception as exc:  # noqa: BLE001 - reported, compared as a parse failure
        return {"error": f"{type(exc).__name__}: {exc}"}
    nodes = []
    for node in doc.nodes:
        sql = node.get("sql", "")
        entry = {"name": node.get("name"), "sql": sql}
        try:
            entry["params"] = get_var_names_and_types(Template(sql))
        except Exception as exc:  # noqa: BLE001
            entry["params_error"] = str(exc)
        try:
            entry["rendered"] = render_sql_template(sql, dict(values), test_mode=True)[0]
        except Exception as exc:  # noqa: BLE001
            entry["render_error"] = str(exc)
        nodes.append(entry)
    return {"nodes": nodes}


given = json.load(sys.stdin)
print(json.dumps({p: dump(p, given.get(p, {})) for p in sys.argv[1:]}, default=str))
