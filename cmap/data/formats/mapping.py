"""Label mappings: a YAML file `class: [codes]` turning raw crop codes into cmap classes."""

from __future__ import annotations

from pathlib import Path

import yaml

from cmap.errors import DataError


def read_mapping(path: str | Path) -> dict[str, str]:
    """A label-mapping YAML (class: [codes]) -> {code: class}."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "label mapping file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({err})") from err
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
