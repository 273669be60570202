"""YAML files cmap reads itself (meta.yaml, label mappings, colours, configs before parsing):
plain data only, named in every refusal, and no alias bombs (a few hundred bytes whose
aliases expand to gigabytes when the data is walked)."""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.events import AliasEvent

from cmap.errors import DataError

MAX_ALIASES = 100  # far above any hand-written file, far below a bomb


class _Loader(yaml.SafeLoader):
    """SafeLoader refusing more than MAX_ALIASES aliases."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name)")
        return super().compose_node(parent, index)


def load_yaml(path: str | Path, what: str):
    """The content of the YAML file `path` (`what` names it in refusals: "label mapping")."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, f"is a folder, not a {what} file")
    if not path.is_file():
        raise DataError(path, f"{what} file not found")
    try:
        return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({err})") from err
    except UnicodeDecodeError as err:
        raise DataError(path, f"is not a text file ({err})") from err
