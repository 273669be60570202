"""Config mistakes told in a few lines: a key no class takes is named with its file, where it
sits and the accepted keys closest to it, before Lightning's parser (whose message for the
same typo runs to dozens of lines) sees the file."""

from __future__ import annotations

import difflib
import inspect
import re
from pathlib import Path

from cmap.errors import ConfigError
from cmap.io.yaml_files import load_yaml
from cmap.links import import_object

# Where a short class name (`class_path: Classifier`) is looked up, as the parser does.
SHORT_NAMES = (
    "cmap.tasks",
    "cmap.models",
    "cmap.data",
    "cmap.callbacks",
    "pytorch_lightning.callbacks",
    "pytorch_lightning.loggers",
    "torch.nn",
)


def config_files(args: list[str]) -> list[Path]:
    """The files given with `--config`/`-c` (either form: `--config F`, `--config=F`)."""
    files = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            files.append(Path(args[i + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files


def suggest(key: str, accepted: list[str]) -> str:
    """' (did you mean X?)' when a close accepted key exists, then the accepted keys."""
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    if len(accepted) > 12:
        return f"{hint} (see --help for the accepted keys)"
    return f"{hint} (accepted: {', '.join(sorted(accepted))})"


def check_config(path: Path, sections: dict[str, list[str]]) -> None:
    """Every key of the YAML file `path` must be known: top-level keys are `sections`' keys,
    a section with a list of names takes those keys (e.g. the Trainer's arguments), and
    every `class_path` spec takes its class's constructor arguments."""
    if not path.is_file():
        return  # the parser says so in its own words
    config = load_yaml(path, "config")
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        if key not in sections:
            raise ConfigError(f"{path}: unknown key '{key}'{suggest(key, list(sections))}")
        accepted = sections[key]
        if accepted and isinstance(value, dict) and "class_path" not in value:
            for name, item in value.items():
                if name not in accepted:
                    raise ConfigError(
                        f"{path}: unknown key '{key}.{name}'{suggest(name, accepted)}"
                    )
                _check_specs(path, item, f"{key}.{name}")
        else:
            _check_specs(path, value, key)


def _check_specs(path: Path, value, where: str) -> None:
    """Check every `class_path` spec in a value (specs nest: encoders hold embeddings)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_specs(path, item, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        return
    if "class_path" not in value:
        for name, item in value.items():
            _check_specs(path, item, f"{where}.{name}")
        return
    init = value.get("init_args") or {}
    extra = sorted(set(value) - {"class_path", "init_args", "dict_kwargs"})
    accepted = _arguments(str(value["class_path"]))
    if accepted is not None and isinstance(init, dict):
        for name in [*init, *extra]:
            if name not in accepted:
                raise ConfigError(
                    f"{path}: unknown key '{where}.init_args.{name}': not an argument of "
                    f"{value['class_path']}{suggest(name, accepted)}"
                )
    for name, item in init.items() if isinstance(init, dict) else ():
        _check_specs(path, item, f"{where}.init_args.{name}")


def _arguments(class_path: str) -> list[str] | None:
    """Constructor arguments of a class named in full or by short name; None when the class
    cannot be found (the parser reports that) or takes any keyword (**kwargs)."""
    candidates = [class_path] if "." in class_path else [f"{m}.{class_path}" for m in SHORT_NAMES]
    for candidate in candidates:
        try:
            cls = import_object(candidate)
        except (ImportError, AttributeError, ValueError):
            continue
        try:
            parameters = inspect.signature(cls).parameters.values()
        except (TypeError, ValueError):
            return None
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        return [p.name for p in parameters if p.kind is not p.VAR_POSITIONAL]
    return None


NOISE = re.compile(
    r"^(- )?(Does not validate against|Subtypes:|Errors:|Expected a <class 'NoneType'>|"
    r"Given value type:|Problem with given class_path)"
)


def short_parser_error(message: str, options: list[str]) -> str:
    """A parser error in a line or two: where (the key and class), what is wrong, the given
    value, and the closest known option or argument for an unknown one."""
    unknown = re.search(r"unrecognized arguments: (--[\w.]+)", message)
    if unknown:
        option = unknown.group(1)
        close = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown option {option}{hint} (see --help)"
    keys = re.findall(r'Parser key "([^"]+)"', message)
    classes = re.findall(r"class_path '([^']+)'", message)
    lines = [re.sub(r'^Parser key "[^"]+":\s*', "", line.strip()) for line in message.splitlines()]
    lines = [line for line in lines if line]
    given = [line for line in lines if line.startswith("Given value:")]
    problems = [
        line.removeprefix("- ")
        for line in lines
        if not NOISE.match(line) and not line.startswith("Given value:")
    ]
    where = ".".join(keys) + (f" ({classes[-1]})" if classes else "")
    text = f"{where}: " if where else ""
    text += "; ".join(dict.fromkeys(problems)) or message.strip()
    option = re.search(r"Option '(\w+)' is not accepted", message)
    accepted = _arguments(classes[-1]) if option and classes else None
    if accepted:
        text += suggest(option.group(1), accepted)
    elif given:
        text += f" ({given[0][:200]})"
    return text
