"""README cannot rot: every ``python -m efe.*`` command in its code blocks runs as printed, and so
does every Python block, with a tiny budget, in one scratch directory per test session.

Commands run in README order as subprocesses (argv split as a POSIX shell would, so quoting is
tested too). ``runs/<setting>/<dataset>/<timestamp>`` is filled with the newest finished run of
that setting and dataset in the scratch directory (usually one an earlier README command made),
or with a run made once from ``RUNS``. To make a new README command runnable, extend the tables
below; a failure names the README line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from efe.datasets.tabular import load_tabular
from tests.conftest import IDENTITY_TAB, NO_PLOTS, ROOT
from tests.helpers.example_data import write_churn_files
from tests.helpers.fake_openai import FakeOpenAI

README = ROOT / "README.md"
TIMEOUT_S = 600

# --- what README commands need: extend these tables -------------------------------------------------
# Appended to every command of a module (Hydra: the last value of a key wins): the smallest budget that runs.
# `++key=value` sets a key whether or not the config has it, so a renamed setting slows the test, never breaks it.
BUDGET: dict[str, list[str]] = {
    "efe.tab": ["evolution.iterations=1", "++selection.top_k=0", "report.models=[tree]", NO_PLOTS],
    "efe.time": ["evolution.iterations=1", "++selection.top_k=0", NO_PLOTS],
}
# A run to make (budget appended) when a placeholder names a setting/dataset the session has no run of yet.
RUNS: dict[tuple[str, str], list[str]] = {
    ("tab", "titanic"): ["efe.tab", "dataset=titanic"],
    ("tab", "churn"): ["efe.tab", "dataset=csv", "dataset.path=churn.csv", "dataset.target=churned",
                       "dataset.name=churn"],
    ("tab", "breast_cancer"): ["efe.tab", "dataset=breast_cancer"],
    ("time", "synthetic_exp"): ["efe.time", "dataset=synthetic_exp"],
}
# Literal README text replaced in commands and Python blocks: value = function of the session.
SUBSTITUTIONS: dict[str, Callable[["Session"], str]] = {
    "http://localhost:8000/v1": lambda session: session.llm_url,
}


def make_files(directory: Path) -> None:
    """The input files README commands name, as a new user would have them."""
    write_churn_files(directory)                                   # churn.csv, churn_test.csv, data.csv
    (directory / "my_program.py").write_text(IDENTITY_TAB)
    titanic = load_tabular({"name": "titanic"}).X
    titanic.to_csv(directory / "big.csv", index=False)
    (directory / "big").mkdir()                                    # efe.apply input=big/ (a directory of parts)
    for k, part in enumerate((titanic.iloc[:500], titanic.iloc[500:])):
        part.to_parquet(directory / "big" / f"part-{k}.parquet", index=False)
    (directory / "programs").symlink_to(ROOT / "programs")       # efe.score programs/tab_identity.py


# --- extracting README's commands ----------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    line: int          # README line where the command or block starts
    kind: str          # "command" or "python"
    text: str

    def __str__(self) -> str:
        return f"README.md:{self.line}"


PLACEHOLDER = re.compile(r"runs/(?P<setting>[\w-]+)/(?P<dataset>[\w.-]+)/<timestamp>")
EFE_COMMAND = re.compile(r"(^|\s)(\S*/)?python3?\s+-m\s+efe\.")


def readme_items(text: str) -> list[Item]:
    """Every ``python -m efe.*`` command of the bash blocks (continuation lines joined), every Python block."""
    items, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence or not fence.group(1):
            i += 1
            continue
        lang, start, body = fence.group(1), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang == "python":
            items.append(Item(start + 1, "python", "\n".join(body) + "\n"))
        elif lang in ("bash", "sh", "shell", "console"):
            j = 0
            while j < len(body):
                first, command = j, body[j]
                while command.rstrip().endswith("\\") and j + 1 < len(body):
                    j += 1
                    command = command.rstrip()[:-1].rstrip() + " " + body[j].strip()
                j += 1
                if EFE_COMMAND.search(command):
                    items.append(Item(start + first + 1, "command", command.strip()))
    return items


ITEMS = readme_items(README.read_text())


# --- the scratch directory a session's commands share --------------------------------------------
class Session:
    def __init__(self, directory: Path, llm_url: str) -> None:
        self.dir = directory
        self.llm_url = llm_url
        self.env = dict(os.environ, HF_HUB_OFFLINE="1", EFE_LLM_CACHE=str(directory / "llm-cache"),
                        OPENAI_API_KEY="test-key", PYTHONPATH=str(ROOT))
        for key in ("EFE_LLM_API_BASE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):  # a new user's shell has none
            self.env.pop(key, None)

    def run(self, argv: list[str], where: str, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv, cwd=self.dir, capture_output=True, text=True, timeout=TIMEOUT_S,
                              env={**self.env, **(env or {})})
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            pytest.fail(f"{where} failed (exit status {proc.returncode}): {shlex.join(argv)}\n{tail}", pytrace=False)
        return proc

    def fill(self, text: str, where: str) -> str:
        for literal, value in SUBSTITUTIONS.items():
            text = text.replace(literal, value(self))
        return PLACEHOLDER.sub(lambda m: self.latest_run(m["setting"], m["dataset"], where), text)

    def latest_run(self, setting: str, dataset: str, where: str) -> str:
        runs = sorted(p for p in (self.dir / "runs" / setting / dataset).glob("*")
                      if (p / "frozen" / "manifest.json").exists())
        if not runs:
            if (setting, dataset) not in RUNS:
                pytest.fail(f"{where} names runs/{setting}/{dataset}/<timestamp>: add a recipe to RUNS in "
                            f"{Path(__file__).name}", pytrace=False)
            module, *overrides = RUNS[(setting, dataset)]
            self.run([sys.executable, "-m", module, *overrides, *BUDGET.get(module, [])],
                     f"{where} (making a {setting}/{dataset} run for its placeholder)")
            return self.latest_run(setting, dataset, where)
        return str(runs[-1].relative_to(self.dir))


@pytest.fixture(scope="session")
def session(tmp_path_factory):
    directory = tmp_path_factory.mktemp("readme")
    make_files(directory)
    fenced = f"```python\n{IDENTITY_TAB}\n```"
    with FakeOpenAI(lambda messages: fenced) as llm:
        yield Session(directory, llm.url)


def command_argv(item: Item, session: Session) -> tuple[list[str], dict[str, str]]:
    """The README command as argv (split like a POSIX shell, comments dropped), with its budget, and its env."""
    words = shlex.split(session.fill(item.text, str(item)), comments=True)
    env = {}
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if not words or not re.search(r"(^|/)python3?$", words[0]) or words[1:2] != ["-m"]:
        pytest.fail(f"{item}: expected '[VAR=value ...] <python> -m efe.<module> ...', got {item.text!r}",
                    pytrace=False)
    if any(w in ("|", "&&", ";", ">", "<") for w in words):
        pytest.fail(f"{item}: pipes, redirections and command lists are not supported here: {item.text!r}",
                    pytrace=False)
    module = words[2]
    if "llm=openai" in words and not any(w.startswith("llm.api_base=") for w in words):
        # no network here: the README's hosted endpoint is answered by the local fake server (a run whose
        # every LLM call fails exits 4, as it should)
        words.append(f"llm.api_base={session.llm_url}")
    return [sys.executable, "-m", module, *words[3:], *BUDGET.get(module, [])], env


def test_readme_has_commands_and_python_blocks():
    assert sum(i.kind == "command" for i in ITEMS) >= 10 and sum(i.kind == "python" for i in ITEMS) >= 3


@pytest.mark.parametrize("item", ITEMS, ids=str)
def test_readme_item_runs_as_printed(item: Item, session: Session):
    if item.kind == "python":
        script = session.dir / f"readme_line_{item.line}.py"
        script.write_text(session.fill(item.text, str(item)))
        session.run([sys.executable, script.name], f"{item} (Python block)")
        return
    argv, env = command_argv(item, session)
    session.run(argv, f"{item} `{item.text}`", env)


def test_readme_extraction_joins_continuations_and_keeps_line_numbers():
    text = "x\n```bash\n.venv/bin/python -m efe.tab a=1 \\\n    b=\"c; d\"   # note\npython3 scripts/dev.py run\n```\n" \
           "```python\nprint(1)\n```\n"
    items = readme_items(text)
    assert items == [Item(3, "command", '.venv/bin/python -m efe.tab a=1 b="c; d"   # note'),
                     Item(8, "python", "print(1)\n")]
    assert shlex.split(items[0].text, comments=True)[-1] == "b=c; d"
