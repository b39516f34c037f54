"""Security guarantees, each checked so that breaking it fails a test:

1. configs are data: TOML through tomllib and pydantic, never evaluated or imported;
2. persisted task results are never pickles (every task either keeps no result or uses JSON);
3. models load from safetensors only, never with remote code, and nothing unpickles;
4. the Prefect server and the local Dask cluster listen on loopback only;
5. output paths stay inside the output root whatever a document says.

Fast: no pipeline run, no server, no network."""

from __future__ import annotations

import ast
import importlib
import pickle
import pkgutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.config import ConfigError, load_config, parse_override

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("tasks", "flows")


class Touch:
    """Pickles into a payload that creates `marker` when (and only when) it is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# --- 1. configs are parsed, never executed ----------------------------------------------


def code_payloads(marker: Path) -> dict[str, str]:
    return {
        "python": f"__import__('os').system('touch {marker}')",
        "yaml": f"!!python/object/apply:os.system ['touch {marker}']",
        "jinja": f"{{{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}}}",
        "shell": f"$(touch {marker})",
    }


def test_code_like_toml_strings_stay_inert_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    payload = code_payloads(marker)
    config_file = tmp_path / "evil.toml"
    config_file.write_text(
        f"[output]\nroot = {payload['python']!r}\n"
        f"[summary]\nprefix = {payload['jinja']!r}\n"
        f"[dask]\naddress = {payload['shell']!r}\n"
        f"[input.columns]\ntitle = {payload['yaml']!r}\n"
        f"[[entities.known]]\nname = {payload['yaml']!r}\naliases = [{payload['python']!r}, {payload['jinja']!r}]\n",
        encoding="utf-8",
    )
    config = load_config(config_file)
    assert config.output.root == payload["python"]
    assert config.summary.prefix == payload["jinja"]
    assert config.dask.address == payload["shell"]
    assert config.input.columns.title == payload["yaml"]
    assert config.entities.known[0].name == payload["yaml"]
    assert config.entities.known[0].aliases == [payload["python"], payload["jinja"]]
    config.canonical_json(), config.sha256()  # serialising the config does not run them either
    assert not marker.exists()


@pytest.mark.parametrize("key", ["run.shard_size", "runtime.device", "output.compression", "clean.languages"])
def test_code_like_values_in_typed_keys_are_refused_by_validation(tmp_path, monkeypatch, key):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    value = code_payloads(marker)["python"]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides={key: [value] if key == "clean.languages" else value})
    assert not marker.exists()


@pytest.mark.parametrize(
    "suffix,body",
    [
        (".py", "import pathlib\npathlib.Path({marker!r}).touch()\n"),
        (".yaml", "run: !!python/object/apply:pathlib.Path.touch [{marker!r}]\n"),
        (".pkl", None),  # a pickle that would create the marker if unpickled
    ],
)
def test_extends_never_executes_the_file_it_names(tmp_path, monkeypatch, suffix, body):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # importing base.py would find it
    marker = tmp_path / "PWNED"
    base = tmp_path / f"base{suffix}"
    if body is None:
        base.write_bytes(pickle.dumps(Touch(marker)))
    else:
        base.write_text(body.format(marker=str(marker)), encoding="utf-8")
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{base.name}"\n[summary]\nsentences = 4\n', encoding="utf-8")
    # A file that is not UTF-8 text (the pickle) fails to decode: a config error too, which the CLI reports.
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(child)
    assert not marker.exists()


def test_an_extended_py_file_is_read_as_toml_data_not_imported(tmp_path, monkeypatch):
    """`[run]` is valid TOML and, run as Python, a NameError: the merged value proves
    the file was parsed as data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "base.py").write_text("[run]\nshard_size = 7\n", encoding="utf-8")
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.py"\n[summary]\nsentences = 4\n', encoding="utf-8")
    config = load_config(child)
    assert config.run.shard_size == 7 and config.summary.sentences == 4
    assert not (tmp_path / "__pycache__").exists()


def test_cli_overrides_are_toml_values_or_text_never_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    code = f'__import__("os").system("touch {marker}")'
    assert parse_override(f"summary.prefix={code}") == ("summary.prefix", code)
    assert parse_override(f"output.root={code!r}") == ("output.root", code)
    for raw in (f"exec({code!r})", f"eval({code!r})", f"{{{{ {code} }}}}", f"!!python/object/apply:os.system ['touch {marker}']"):
        assert parse_override(f"summary.prefix={raw}") == ("summary.prefix", raw)
    # A newline cannot smuggle further keys into the config: only the value is taken.
    key, value = parse_override('run.shard_size=3\n[input]\npaths = ["/etc"]')
    assert (key, value) == ("run.shard_size", 3)
    config = load_config(overrides=dict([parse_override(f"summary.prefix={code}"), (key, value)]))
    assert config.summary.prefix == code and config.input.paths == ["data/samples"]
    with pytest.raises(ConfigError, match=r"run\.shard_size"):
        load_config(overrides=dict([parse_override(f"run.shard_size={code}")]))
    # and the way the CLI's --set takes them
    from flows.cli import collect_overrides

    overrides = collect_overrides([], None, None, [f"summary.prefix={code}", f"output.root={code!r}"])
    assert overrides == {"summary.prefix": code, "output.root": code} and not marker.exists()
    assert not marker.exists()


# --- 2. persisted results are never pickles -----------------------------------------------


def project_modules() -> list:
    modules = []
    for package_name in SOURCE_PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            modules.append(importlib.import_module(info.name))
    return modules


def project_objects(kind: type) -> dict[str, object]:
    found = {}
    for module in project_modules():
        for name, value in vars(module).items():
            if isinstance(value, kind):
                found.setdefault(f"{value.__module__}.{name}", value)
            elif isinstance(value, dict):  # a registry, such as the stage tasks by stage name
                found.update({f"{module.__name__}.{name}[{key!r}]": item for key, item in value.items() if isinstance(item, kind)})
    return found


def may_persist_a_pickle(obj) -> bool:
    """True unless `obj` (a Task or Flow) keeps no result, or keeps it as JSON. `None` means
    Prefect's settings decide (results.persist_by_default, or a server's default result
    storage block), with Prefect's default serializer: pickle."""
    from prefect.results import get_default_result_serializer
    from prefect.serializers import JSONSerializer, Serializer

    if obj.persist_result is False:
        return False
    serializer = obj.result_serializer
    if serializer is None:
        serializer = get_default_result_serializer()
    elif isinstance(serializer, str):
        serializer = Serializer(type=serializer)
    return not isinstance(serializer, JSONSerializer)


def test_the_pickle_check_itself_tells_pickle_from_json():
    from prefect import task

    def f():
        return 1

    assert may_persist_a_pickle(task(f, persist_result=True))
    assert may_persist_a_pickle(task(f))
    assert not may_persist_a_pickle(task(f, persist_result=False))
    assert not may_persist_a_pickle(task(f, persist_result=True, result_serializer="json"))


def test_no_task_in_tasks_or_flows_persists_a_pickle():
    from prefect import Task

    found = project_objects(Task)
    names = {t.name for t in found.values()}
    expected = {"ingest", "clean", "deduplicate", "encode", "summarize", "sentiment", "stance", "write", "finalize"}
    assert expected <= names, f"stage tasks not found: {expected - names}"
    pickling = sorted(qualified for qualified, t in found.items() if may_persist_a_pickle(t))
    assert not pickling, f"tasks that may persist pickled results: {pickling}"


def test_no_flow_in_tasks_or_flows_persists_a_pickle():
    from prefect import Flow

    found = project_objects(Flow)
    names = {f.name for f in found.values()}
    assert {"news-pipeline", "news-pipeline-shards", "evaluate", "train-heads"} <= names, names
    pickling = sorted(qualified for qualified, f in found.items() if may_persist_a_pickle(f))
    assert not pickling, f"flows that may persist pickled results: {pickling}"


def test_the_shard_flow_persists_no_result():
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.pipeline import process_shards

    assert process_shards.name == "news-pipeline-shards"
    assert not may_persist_a_pickle(process_shards)
    # the pipeline's per-run copy (with_options) keeps the setting
    assert not may_persist_a_pickle(process_shards.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1)))


def test_the_news_pipeline_flow_never_persists_a_pickle():
    from flows.pipeline import news_pipeline

    assert news_pipeline.name == "news-pipeline"
    assert not may_persist_a_pickle(news_pipeline)


# --- 3. safetensors only, no remote code, nothing unpickled -------------------------------

UNSAFE_CALLS = {
    "torch.load",
    "torch.jit.load",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "cloudpickle.load",
    "cloudpickle.loads",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "pandas.read_pickle",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "yaml.load",
    "yaml.unsafe_load",
    "yaml.full_load",
    "eval",
    "exec",
}
UNSAFE_MODULES = {"pickle", "cloudpickle", "dill", "joblib", "marshal", "shelve", "yaml"}


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def unsafe_loading(source: str, filename: str = "<source>") -> list[str]:
    """Each call or import in `source` that could run pickled or remote code."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func, aliases) or ""
        where = f"{filename}:{node.lineno}"
        if name in UNSAFE_CALLS:
            found.append(f"{where}: {name}()")
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        pickle_flag = keywords.get("allow_pickle")
        if name == "numpy.load" and pickle_flag is not None and not (isinstance(pickle_flag, ast.Constant) and pickle_flag.value is False):
            found.append(f"{where}: numpy.load(allow_pickle={ast.unparse(pickle_flag)})")
        if "trust_remote_code" in keywords and not (isinstance(keywords["trust_remote_code"], ast.Constant) and keywords["trust_remote_code"].value is False):
            found.append(f"{where}: trust_remote_code={ast.unparse(keywords['trust_remote_code'])}")
        if "use_safetensors" in keywords and not (isinstance(keywords["use_safetensors"], ast.Constant) and keywords["use_safetensors"].value is True):
            found.append(f"{where}: use_safetensors={ast.unparse(keywords['use_safetensors'])}")
        if isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
            receiver = ast.unparse(node.func.value)
            if "Tokenizer" not in receiver and "Config" not in receiver and "use_safetensors" not in keywords:
                found.append(f"{where}: {receiver}.from_pretrained without use_safetensors=True")
    return found


def test_the_scanner_finds_each_unsafe_pattern():
    snippet = (
        "import torch, pickle\nimport numpy as np\nfrom joblib import load as jl\nimport pandas as pd\n"
        "torch.load('w.bin')\npickle.loads(b'')\njl('m.joblib')\nnp.load('a.npy', allow_pickle=True)\npd.read_pickle('x')\n"
        "AutoModel.from_pretrained('m', trust_remote_code=True, use_safetensors=True)\n"
        "AutoModel.from_pretrained('m', use_safetensors=False)\nauto_class.from_pretrained('m')\n"
        "AutoTokenizer.from_pretrained('m', trust_remote_code=flag)\neval('1')\n"
    )
    found = "\n".join(unsafe_loading(snippet))
    for expected in (
        "import pickle",
        "torch.load()",
        "pickle.loads()",
        "joblib.load()",
        "numpy.load(allow_pickle",
        "pandas.read_pickle()",
        "trust_remote_code=True",
        "use_safetensors=False",
        "auto_class.from_pretrained without",
        "trust_remote_code=flag",
        "eval()",
    ):
        assert expected in found, expected
    safe = (
        "AutoModel.from_pretrained('m', use_safetensors=True, trust_remote_code=False)\n"
        "AutoTokenizer.from_pretrained('m', local_files_only=True)\nnp.load('a.npy')\n"
    )
    assert unsafe_loading(safe) == []


def test_no_source_file_loads_pickles_or_remote_code():
    files = sorted(p for package in SOURCE_PACKAGES for p in (REPO_ROOT / package).rglob("*.py"))
    assert len(files) > 20
    found = [hit for path in files for hit in unsafe_loading(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))]
    assert not found, "\n".join(found)


def pickled_only_folder(folder: Path, marker: Path) -> Path:
    """A BERT-shaped model folder whose only weights are a pickle that touches `marker`."""
    import json

    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "architectures": ["BertModel"],
                "vocab_size": 16,
                "hidden_size": 8,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 16,
                "max_position_embeddings": 32,
            }
        )
    )
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "news"]) + "\n")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Touch(marker)))
    return folder


def test_hf_runtime_refuses_a_folder_with_only_pickled_weights(tmp_path):
    """tests/unit/test_hf_backends.py checks the error for a folder with no weights at all;
    here the folder holds a hostile pytorch_model.bin, which must not even be opened."""
    from transformers import AutoModel

    from tasks.models.hf_runtime import ModelLoadError, load_model

    marker = tmp_path / "PWNED"
    folder = pickled_only_folder(tmp_path / "pickled", marker)
    with pytest.raises(ModelLoadError, match="no .safetensors"):
        load_model(AutoModel, str(folder), "cpu", "fp32")
    assert not marker.exists()


def test_the_sentence_encoder_refuses_a_folder_with_only_pickled_weights(tmp_path):
    from tasks.models.encoder import SentenceEncoder

    marker = tmp_path / "PWNED"
    folder = pickled_only_folder(tmp_path / "pickled", marker)
    with pytest.raises(OSError, match="safetensors"):
        SentenceEncoder(folder, max_length=16, max_tokens_per_batch=128)
    assert not marker.exists()


# --- 4. loopback only -----------------------------------------------------------------------


def test_server_environment_binds_loopback_even_when_the_environment_says_otherwise(monkeypatch):
    from flows import server

    monkeypatch.setenv("PREFECT_SERVER_API_HOST", "0.0.0.0")
    monkeypatch.setenv("PREFECT_UI_API_URL", "http://0.0.0.0:4200/api")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    assert server.HOST == "127.0.0.1"
    env = server.server_environment(4321)
    assert env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert env["PREFECT_SERVER_API_PORT"] == "4321"
    assert env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4321/api"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    state = server.ServerState(pid=1, port=4321, log="x")
    assert state.api_url == "http://127.0.0.1:4321/api" and state.ui_url == "http://127.0.0.1:4321"


def test_start_server_runs_prefect_on_loopback(tmp_path, monkeypatch):
    """start_server with Popen replaced: the command and environment it would run."""
    from flows import server

    monkeypatch.setenv("NEWSFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_SERVER_API_HOST", "0.0.0.0")
    launched = {}

    class FakeProcess:
        pid = 999_999_999
        returncode = None

        def __init__(self, args, **kwargs):
            launched["args"], launched["env"] = list(args), kwargs["env"]

        def poll(self):
            return None

    polled = []
    monkeypatch.setattr(server.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(server, "healthy", lambda url, timeout=2.0: polled.append(url) or "args" in launched)
    state = server.start_server(port=4555)
    args = launched["args"]
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "4555"
    assert not any("0.0.0.0" in a or a == "::" for a in args)
    assert launched["env"]["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert all(url.startswith("http://127.0.0.1:") for url in polled)
    assert state.api_url == "http://127.0.0.1:4555/api"


def test_free_port_probes_loopback_only(monkeypatch):
    from flows import server

    bound = []

    class FakeSocket:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            bound.append(address)

        def getsockname(self):
            return (bound[-1][0], 5555)

    monkeypatch.setattr(server.socket, "socket", lambda *a, **k: FakeSocket())
    assert server.free_port() == 5555
    assert bound == [("127.0.0.1", 0)]


def test_local_dask_cluster_binds_loopback_without_a_dashboard():
    from flows.runners import local_cluster_kwargs, task_runner_for
    from tasks.config import DaskConfig, PipelineConfig

    kwargs = local_cluster_kwargs(DaskConfig(workers=3, threads_per_worker=2))
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["dashboard_address"] is None
    assert (kwargs["n_workers"], kwargs["threads_per_worker"]) == (3, 2)
    assert not any("0.0.0.0" in str(v) for v in kwargs.values())
    runner = task_runner_for(PipelineConfig.model_validate({"run": {"runner": "dask"}}))
    assert runner.cluster_kwargs["host"] == "127.0.0.1" and runner.cluster_kwargs["dashboard_address"] is None
    assert runner.address is None  # a local cluster, started on loopback, not a remote scheduler


# --- 5. output paths stay inside the output root ------------------------------------------


def test_inside_refuses_parent_absolute_and_symlink_escapes(tmp_path):
    from tasks.dataset.output import inside

    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    for escaping in ("../x.parquet", "documents/../../x.parquet", str(outside / "x.parquet"), "/etc/passwd", "link/x.parquet", "link"):
        with pytest.raises(ValueError, match="escapes the output root"):
            inside(root, Path(escaping))
    assert inside(root, Path("documents/run_date=2024-01-01/a.parquet")) == root / "documents/run_date=2024-01-01/a.parquet"
    assert inside(root, Path("documents/../runs/a.parquet")).resolve() == (root / "runs/a.parquet").resolve()


def context_for(tmp_path: Path, run_id: str | None = None):
    from tasks.dataset.output import RunContext

    return RunContext(
        run_id=run_id or str(uuid.uuid4()),
        started_at=datetime(2024, 5, 6, 23, 30, tzinfo=UTC),
        output_root=str(tmp_path / "out"),
        config_sha256="0" * 64,
        staging=str(tmp_path / "out" / "_staging" / "run"),
    )


def test_run_context_paths_stay_inside_the_root_and_name_only_table_part_run_and_date(tmp_path):
    context = context_for(tmp_path)
    root, staged_root = (tmp_path / "out").resolve(), (tmp_path / "out" / "_staging" / "run" / "output").resolve()
    for table in ("documents", "stances", "sentences", "rejected", "runs"):
        for part in ("00000", "00042", "all"):
            relative = Path(table) / "run_date=2024-05-06" / f"{context.run_id}-{part}.parquet"
            assert context.relative_path(table, part) == relative
            assert context.table_path(table, part).resolve() == root / relative
            assert context.staged_path(table, part).resolve() == staged_root / relative
    for hostile in ("../../../../tmp/evil", "/tmp/evil", "a/../../../../../evil"):
        bad = context_for(tmp_path, hostile)
        for build, _base in ((bad.table_path, root), (bad.staged_path, staged_root)):
            with pytest.raises(ValueError, match="escapes"):
                build("documents", "00000")


def test_document_values_never_steer_where_a_table_is_written(tmp_path, monkeypatch):
    """A shard whose origin/title/source/url are path-like lands exactly where the run's
    id and the part number say, and nothing is written outside the output root."""
    from tasks.dataset.output import write_table

    monkeypatch.chdir(tmp_path)
    context = context_for(tmp_path)
    hostile = ["../../../../escape", str(tmp_path / "escape"), "..\\..\\escape", "documents/../../escape", "~/escape"]
    documents = pa.table(
        {
            "doc_id": [f"d{i}" for i in range(len(hostile))],
            "origin": hostile,
            "source": hostile,
            "title": hostile,
            "url": [f"file://{h}" for h in hostile],
            "text": ["body"] * len(hostile),
        }
    )
    before = set(tmp_path.rglob("*"))
    for staged in (False, True):
        path, rows = write_table(context, "documents", "00003", documents, staged=staged)
        expected = (context.staged_path if staged else context.table_path)("documents", "00003")
        assert Path(path) == expected and rows == len(hostile)
        assert Path(path).resolve().is_relative_to((tmp_path / "out").resolve())
        assert pq.read_table(path).column("origin").to_pylist() == hostile
    created = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert created == {context.table_path("documents", "00003"), context.staged_path("documents", "00003")}
    assert not (tmp_path / "escape").exists()


def test_relative_path_reads_nothing_but_the_table_part_run_id_and_date():
    """The path-building code cannot consult document values: it only reads its own
    arguments and the run's id and date."""
    import inspect
    import textwrap

    from tasks.dataset.output import RunContext

    tree = ast.parse(textwrap.dedent(inspect.getsource(RunContext.relative_path)))
    function = tree.body[0]
    assert [a.arg for a in function.args.args] == ["self", "table", "part"]
    body = [n for statement in function.body for n in ast.walk(statement)]  # not the annotations
    read_from_self = {n.attr for n in body if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"}
    names = {n.id for n in body if isinstance(n, ast.Name)}
    assert read_from_self == {"run_date", "run_id"}
    assert names <= {"self", "table", "part", "Path"}
