"""Reading program files and checking them against their contract, without running them.

The trusted process never imports a candidate: it reads the source, parses it, and says
exactly what is missing. The same contract is checked again, dynamically, inside the sandbox.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from efe.core.errors import EfeError
from efe.core.contracts import CONTRACTS, EVOLVE_END, EVOLVE_START, Contract, contract_for
from efe.core.pysource import parse_python


def code_hash(code: str) -> str:
    """A program's identity: the sha256 of its stripped source (names files in programs/ and outcomes/)."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


class ProgramContractError(EfeError):
    """A program file does not follow its contract; the message lists every problem."""


@dataclass(frozen=True)
class ProgramSource:
    path: Path | None
    text: str
    setting: str


def detect_setting(text: str) -> str | None:
    for contract in CONTRACTS.values():
        if f"def {contract.factory}" in text:
            return contract.setting
    return None


def contract_problems(text: str, contract: Contract, *, require_markers: bool = True) -> list[str]:
    problems: list[str] = []
    if require_markers:
        start, end = text.find(EVOLVE_START), text.find(EVOLVE_END)
        if start < 0:
            problems.append(f"missing the '{EVOLVE_START}' marker")
        if end < 0:
            problems.append(f"missing the '{EVOLVE_END}' marker")
        if start >= 0 and end >= 0 and end < start:
            problems.append(f"'{EVOLVE_END}' comes before '{EVOLVE_START}'")
    try:
        tree = parse_python(text)
    except SyntaxError as exc:
        problems.append(f"syntax error at line {exc.lineno}: {exc.msg}")
        return problems
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    factory = functions.get(contract.factory)
    if factory is None:
        problems.append(f"no module-level function {contract.factory}(seed)")
        return problems
    args = factory.args
    positional = args.posonlyargs + args.args
    required = len(positional) - len(args.defaults)
    if not positional and args.vararg is None:
        problems.append(f"{contract.factory} must accept one argument, seed")
    elif required > 1:
        problems.append(f"{contract.factory} must need only one argument (seed), it needs {required}")
    for cls_name in _returned_classes(factory):
        cls = classes.get(cls_name)
        if cls is None or cls.bases:
            continue  # defined elsewhere or inherits: the sandbox checks it at run time
        methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
        for method, params in contract.methods.items():
            fn = methods.get(method)
            signature = f"{method}(self, {', '.join(params)})"
            if fn is None:
                problems.append(f"class {cls_name} has no method {signature}")
                continue
            fpos = fn.args.posonlyargs + fn.args.args
            if fn.args.vararg is None and len(fpos) < len(params) + 1:
                problems.append(f"{cls_name}.{method} takes {max(len(fpos) - 1, 0)} argument(s); "
                                f"the contract is {signature}")
    return problems


def read_program(path: str | Path, setting: str | None = None) -> ProgramSource:
    """Read a program file and check its contract; raise with every problem listed."""
    p = Path(path)
    if not p.exists():
        raise ProgramContractError(f"program file '{path}' does not exist")
    text = p.read_text()
    setting = setting or detect_setting(text)
    if setting is None:
        names = " or ".join(f"{c.factory}(seed)" for c in CONTRACTS.values())
        raise ProgramContractError(f"'{path}' defines neither {names}; it is not an efe program")
    contract = contract_for(setting)
    problems = contract_problems(text, contract)
    if problems:
        listing = "\n  - ".join(problems)
        raise ProgramContractError(f"'{path}' does not follow the {setting} program contract "
                                   f"({contract.describe()}):\n  - {listing}")
    return ProgramSource(p, text, setting)


def _returned_classes(fn: ast.FunctionDef) -> list[str]:
    names = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            if isinstance(node.value.func, ast.Name):
                names.append(node.value.func.id)
    return names


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)


def extract_code(text: str) -> str | None:
    """The program in an LLM response: the fenced block holding the EVOLVE block, else the longest."""
    blocks = [b for b in _FENCE.findall(text or "") if b.strip()]
    if not blocks:
        return None
    marked = [b for b in blocks if EVOLVE_START in b]
    return max(marked or blocks, key=len)


def splice_into_template(code: str, template: str) -> str:
    """Keep the candidate's EVOLVE block, and the template's fixed text around it."""
    cs, ce = code.find(EVOLVE_START), code.find(EVOLVE_END)
    ts, te = template.find(EVOLVE_START), template.find(EVOLVE_END)
    if min(cs, ce, ts, te) < 0 or ce < cs or te < ts:
        return code
    block = code[cs: ce + len(EVOLVE_END)]
    return template[:ts] + block + template[te + len(EVOLVE_END):]


def normalise_response(text: str, template: str) -> str:
    """An LLM response reduced to one fenced program with the fixed factory restored."""
    code = extract_code(text)
    if code is None:
        return text
    return "```python\n" + splice_into_template(code, template).rstrip() + "\n```\n"


_PROMPT_SECTION = re.compile(r"^### (?P<name>[\w\-]+)\n```\n(?P<body>.*?)\n```", re.S | re.M)


def prompt_parts(prompt: str) -> tuple[str | None, dict[str, str]]:
    """(the current program, the feedback sections by name) from a rendered openevolve prompt."""
    marker = prompt.find("# Current Program")
    parent = extract_code(prompt[marker:]) if marker >= 0 else None
    return parent, {m.group("name"): m.group("body") for m in _PROMPT_SECTION.finditer(prompt)}


def proposal_request(prompt: str, names: tuple[str, ...]) -> str:
    """What the offline proposer reads of a prompt: the current program and the sections ``names`` (role,
    memory rules), without the rest (metrics and artifacts carry timings): what a deterministic search
    seeds a proposal from."""
    parent, sections = prompt_parts(prompt)
    return json.dumps([parent, [sections.get(name) for name in names]])
