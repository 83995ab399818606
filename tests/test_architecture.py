"""The import rules of DESIGN.md §1, checked by walking every module's imports."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "channels", "dialogs", "services", "web")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules():
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            yield path.relative_to(ROOT).as_posix(), _imports(path)


def _top(name: str) -> str:
    return name.split(".")[0]


def test_import_direction():
    problems = []
    for module, imports in _modules():
        tops = {_top(n) for n in imports}
        package = module.split("/")[0]
        if module == "bot/messages.py" and tops & set(PACKAGES):
            problems.append(f"{module} must import nothing of ours")
        if package == "services" and tops & {"bot", "channels", "dialogs", "web"}:
            problems.append(f"{module}: services import only leaves")
        if package == "dialogs" and tops & {"channels", "web"} | ({"bot"} if any(
                n.startswith("bot.") and n not in ("bot.messages",) for n in imports) else set()):
            problems.append(f"{module}: dialogs import services and bot.messages only")
        if package == "channels" and (tops & {"services", "dialogs", "web"} or any(
                n.startswith("bot.") and n != "bot.messages" for n in imports)):
            problems.append(f"{module}: channels import only bot.messages")
        if package != "web" and "flask" in tops:
            problems.append(f"{module}: only web/ imports Flask")
        if package != "channels" and tops & {"twilio", "telegram"}:
            problems.append(f"{module}: only channels/ import twilio or telegram")
        if "stripe" in tops and not module.startswith("services/payments"):
            problems.append(f"{module}: only services/payments imports stripe")
        if "openai" in tops and not module.startswith("services/summaries"):
            problems.append(f"{module}: only services/summaries imports openai")
    assert not problems, "\n".join(problems)


def test_the_walker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from flask import Flask\nimport twilio.rest\n")
    assert {"flask", "twilio.rest"} <= _imports(bad)
