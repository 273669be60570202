"""Label mappings: a YAML file `class: [codes]` turning raw crop codes into cmap classes."""

from __future__ import annotations

from pathlib import Path

from cmap.errors import DataError
from cmap.io.yaml_files import load_yaml


def read_mapping(path: str | Path) -> dict[str, str]:
    """A label-mapping YAML (class: [codes]) -> {code: class}."""
    path = Path(path)
    content = load_yaml(path, "label mapping")
    if not isinstance(content, dict):
        raise DataError(path, "must map each class name to a list of codes")
    mapping: dict[str, str] = {}
    for name, codes in content.items():
        codes = codes if isinstance(codes, list) else [codes]
        for code in codes:
            code = str(code)
            if code in mapping and mapping[code] != name:
                raise DataError(
                    path, f"code {code!r} is listed under both {mapping[code]!r} and {name!r}"
                )
            mapping[code] = str(name)
    return mapping
