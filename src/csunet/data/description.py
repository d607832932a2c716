"""Dataset descriptions: where images and masks live, which classes there are, how masks encode them.

A description is what the rest of the toolkit consumes; built-in NASA tasks are descriptions made in code,
users write (or ``csunet data init``) a YAML file. Format::

    name: my-alloy
    classes: [matrix, secondary, tertiary]      # index order = model output channel order
    background: matrix                          # optional (default: the first class; null: none)
    mask:
      encoding: colour                          # or: index
      colours: {secondary: "#0000ff", tertiary: "#ff0000"}
      default: matrix                           # colour encoding: class of pixels matching no colour
      # index encoding instead: values: {background: 0, oxide: [1, 2]}
      ignore: 255                               # raw value (or colour) of unlabelled pixels, optional
      suffix: _mask                             # mask file stem = image stem + suffix
    splits:                                     # split layout ...
      train: {images: train, masks: train_annot}
      val: {images: val, masks: val_annot}
    # ... or one folder pair (a single split called "all"):
    # images: images
    # masks: masks
    pixel_size_um: 0.0125                       # optional
    class_colours: {matrix: "#000000"}          # optional display colours

``classes`` can instead be a table of names and mask values, so a class is named in one place (what
``csunet data init`` writes): ``{matrix: 0, oxide: [1, 2]}`` for index masks, ``{matrix: other, secondary:
"#0000ff"}`` for colour masks (``other``: every pixel of no listed colour).

Relative folders are relative to the YAML file (or to ``root:`` when given).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from csunet.data.errors import DataError
from csunet.data.masks import ColourEncoding, IndexEncoding, MaskEncoding, format_colour, parse_colour
from csunet.utils import read_yaml

DEFAULT_PALETTE = [
    (0, 0, 0),
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
]


def default_colours(count: int) -> list[tuple[int, int, int]]:
    """Display colours of ``count`` classes nobody gave colours: the palette, repeated when there are more."""
    return [DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)] for index in range(count)]


@dataclass(frozen=True)
class SplitFolders:
    images: Path
    masks: Path
    names: tuple[str, ...] | None = None
    """Only these image files of the folders (a split held out of a single folder pair); None: every file."""


@dataclass
class DatasetDescription:
    name: str
    classes: list[str]
    encoding: MaskEncoding
    splits: dict[str, SplitFolders]
    mask_suffix: str = ""
    pixel_size_um: float | None = None
    class_colours: list[tuple[int, int, int]] = field(default_factory=list)
    source: Path | None = None
    background: int | None = 0
    """Index of the background (matrix) class: left out of "mean IoU without background", measured as the
    matrix by `csunet measure`, left unpainted in overlays. None: every class is a phase of its own."""

    def __post_init__(self) -> None:
        where = self.source or self.name
        if not self.classes:
            raise DataError(f"{where}: no classes listed")
        if len(self.classes) < 2:
            raise DataError(
                f"{where}: one class ({self.classes[0]!r}); a segmentation model tells at least two apart, so the "
                "masks must mark at least two (e.g. matrix 0 and a phase 1)"
            )
        if len(set(self.classes)) != len(self.classes):
            raise DataError(f"{where}: class names repeat: {self.classes}")
        if len(self.classes) >= 255:
            raise DataError(f"{where}: at most 254 classes are supported")
        if not self.splits:
            raise DataError(f"{where}: no image/mask folders given")
        if not self.class_colours:
            self.class_colours = default_colours(len(self.classes))
        if len(self.class_colours) != len(self.classes):
            raise DataError(f"{where}: {len(self.class_colours)} display colours for {len(self.classes)} classes")
        if self.background is not None and not 0 <= self.background < len(self.classes):
            raise DataError(f"{where}: background class index {self.background} is not one of the classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> SplitFolders:
        if name not in self.splits:
            raise DataError(f"{self.source or self.name}: no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]

    def to_dict(self) -> dict:
        """Plain-data form (YAML/JSON/checkpoint friendly); folders stay absolute."""
        mask: dict = {"encoding": self.encoding.kind}
        if isinstance(self.encoding, IndexEncoding):
            values: dict[str, list[int]] = {}
            for raw, index in sorted(self.encoding.values.items()):
                values.setdefault(self.classes[index], []).append(raw)
            mask["values"] = {k: v[0] if len(v) == 1 else v for k, v in values.items()}
            if self.encoding.ignore is not None:
                mask["ignore"] = self.encoding.ignore
        else:
            colours: dict[str, list[str]] = {}
            for colour, index in self.encoding.colours.items():
                colours.setdefault(self.classes[index], []).append(format_colour(colour))
            mask["colours"] = {k: v[0] if len(v) == 1 else v for k, v in colours.items()}
            if self.encoding.default is not None:
                mask["default"] = self.classes[self.encoding.default]
            if self.encoding.ignore is not None:
                mask["ignore"] = format_colour(self.encoding.ignore)
        if self.mask_suffix:
            mask["suffix"] = self.mask_suffix
        out: dict = {"name": self.name, "classes": list(self.classes), "mask": mask}
        out["background"] = None if self.background is None else self.classes[self.background]
        out["splits"] = {k: {"images": str(v.images), "masks": str(v.masks)} for k, v in self.splits.items()}
        if self.pixel_size_um is not None:
            out["pixel_size_um"] = self.pixel_size_um
        out["class_colours"] = {c: format_colour(rgb) for c, rgb in zip(self.classes, self.class_colours)}
        return out

    @classmethod
    def from_dict(cls, data: dict, base: Path | None = None, source: Path | None = None) -> DatasetDescription:
        where = source or "dataset description"
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a mapping at the top level")
        _refuse_unknown(data, TOP_LEVEL_KEYS, where, "")
        _refuse_wrong_types(data, TOP_LEVEL_TYPES, where, "")
        mask = data.get("mask") or {}
        _refuse_unknown(mask, MASK_KEYS, where, "mask.")
        _refuse_wrong_types(mask, MASK_TYPES, where, "mask.")
        if isinstance(data.get("classes"), dict):
            mask = _mask_from_class_table(data["classes"], mask, where)
            data = {**data, "classes": list(data["classes"])}
        pixel = data.get("pixel_size_um")
        if pixel is not None and not 0 < pixel < math.inf:  # a number or null: its type was checked above
            raise DataError(
                f"{where}: pixel_size_um must be a positive number of micrometres per pixel (e.g. 0.0125), "
                f"not {pixel!r}"
            )
        try:
            classes = [str(c) for c in data["classes"]]
            root = str(data.get("root", "."))
            base = Path(root) if base is None else base / root
            splits = _parse_splits(data, base, where)
            encoding = _parse_encoding(mask, classes, where)
            class_colours = _display_colours(data.get("class_colours") or {}, classes, where)
        except KeyError as exc:
            raise DataError(f"{where}: missing required field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{where}: {exc}") from None
        background = data.get("background", classes[0] if classes else None)
        if background is not None and str(background) not in classes:
            raise DataError(
                f"{where}: background {background!r} is not one of the classes {classes} (or null for none)"
            )
        return cls(
            background=None if background is None else classes.index(str(background)),
            name=str(data.get("name", source.stem if source else "dataset")),
            classes=classes,
            encoding=encoding,
            splits=splits,
            mask_suffix=str(mask.get("suffix", "")),
            pixel_size_um=float(pixel) if pixel is not None else None,
            class_colours=class_colours,
            source=source,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetDescription:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: dataset description file does not exist")
        data = read_yaml(path, DataError)
        return cls.from_dict(data, base=path.resolve().parent, source=path)

    def save(self, path: str | os.PathLike) -> None:
        from csunet.utils import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


TOP_LEVEL_KEYS = ("name", "classes", "background", "mask", "splits", "images", "masks", "root", "pixel_size_um",
                  "class_colours")  # fmt: skip
OTHER_COLOUR = "other"
"""In a colour class table, the class of every pixel whose colour names no class."""


def _is_index_value(value) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _mask_from_class_table(table: dict, mask: dict, where) -> dict:
    """``classes: {matrix: 0, ferrite: 1}`` (index masks) or ``{matrix: other, secondary: "#0000ff"}`` (colour
    masks): class names and their mask values in one place, so renaming a class is one edit."""
    given = [key for key in ("values", "colours", "colors", "default") if key in mask]
    if given:
        raise DataError(
            f"{where}: the classes table already gives each class its mask values; remove mask.{given[0]}"
        )
    names = [str(name) for name in table]
    for name, value in zip(names, table.values()):
        numbers = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, float)]
        if numbers or (mask.get("encoding") == "index" and not _is_index_value(value)):
            raise DataError(
                f"{where}: class {name!r} has mask value {value!r}; index masks take whole numbers from 0 to 65535, "
                "colour masks colours such as '#0000ff'"
            )
    if all(_is_index_value(value) for value in table.values()):
        return {**mask, "encoding": mask.get("encoding", "index"), "values": dict(zip(names, table.values()))}
    others = [name for name, value in zip(names, table.values()) if value == OTHER_COLOUR]
    if len(others) > 1:
        raise DataError(f"{where}: only one class can be '{OTHER_COLOUR}', not {', '.join(others)}")
    colours = {name: value for name, value in zip(names, table.values()) if value != OTHER_COLOUR}
    return {**mask, "encoding": mask.get("encoding", "colour"), "colours": colours,
            **({"default": others[0]} if others else {})}  # fmt: skip


MASK_KEYS = ("encoding", "values", "colours", "colors", "default", "ignore", "suffix")
SPLIT_KEYS = ("images", "masks")


TEXT, MAPPING = ((str, int), "text"), ((dict,), "a mapping")
TOP_LEVEL_TYPES = {"name": TEXT, "classes": ((list, dict), "a list of names or a table of names and mask values"),
                   "background": ((str, int, type(None)), "a class name or null"),
                   "mask": ((dict, type(None)), "a mapping such as {encoding: index}"), "splits": MAPPING,
                   "images": TEXT, "masks": TEXT, "root": TEXT,
                   "pixel_size_um": ((int, float, type(None)), "a positive number of micrometres per pixel (e.g. 0.0125)"),
                   "class_colours": ((dict, type(None)), "a mapping of class names to colours")}  # fmt: skip
MASK_TYPES = {"encoding": TEXT, "values": MAPPING, "colours": MAPPING, "colors": MAPPING, "default": TEXT,
              "ignore": ((int, str, list), "a mask value or a colour"), "suffix": TEXT}  # fmt: skip
"""What each key of a description holds, checked before any key is read (a number where a folder belongs would
otherwise end in a TypeError far from the key)."""


def _refuse_wrong_types(data: dict, types: dict, where, prefix: str) -> None:
    for key, value in data.items():
        allowed, what = types[key]
        if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
            raise DataError(f"{where}: {prefix}{key} must be {what}, not {value!r}")


def _display_colours(given: dict, classes: list[str], where) -> list[tuple[int, int, int]]:
    """Each class's display colour: the one given, else the default palette's (a partial table is fine)."""
    if not given:
        return []
    for name in given:
        _class_index(name, classes, where, "class_colours")
    try:
        return [
            parse_colour(given[c]) if c in given else rgb for c, rgb in zip(classes, default_colours(len(classes)))
        ]
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: class_colours: {exc}") from None


def _refuse_unknown(data: dict, known: tuple[str, ...], where, prefix: str) -> None:
    """A misspelt key would otherwise be dropped without a word (``mask.ignroe``: no pixel ignored)."""
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        raise DataError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(prefix + k for k in unknown)}; "
            f"the keys{' of ' + prefix.rstrip('.') if prefix else ''} are {', '.join(known)}"
        )


def _parse_splits(data: dict, base: Path, where) -> dict[str, SplitFolders]:
    if "splits" in data:
        if not data["splits"]:  # a mapping: its type was checked with the other keys
            raise DataError(f"{where}: 'splits' must map split names to {{images: ..., masks: ...}}")
        for name, entry in data["splits"].items():
            if not isinstance(entry, dict):
                raise DataError(f"{where}: splits.{name} must be {{images: FOLDER, masks: FOLDER}}, not {entry!r}")
            _refuse_unknown(entry, SPLIT_KEYS, where, f"splits.{name}.")
            _refuse_wrong_types(entry, {"images": TEXT, "masks": TEXT}, where, f"splits.{name}.")
        return {
            str(name): SplitFolders(base / str(entry["images"]), base / str(entry["masks"]))
            for name, entry in data["splits"].items()
        }
    if "images" in data and "masks" in data:
        return {"all": SplitFolders(base / str(data["images"]), base / str(data["masks"]))}
    raise DataError(f"{where}: give either 'splits' or both 'images' and 'masks'")


def _class_index(name, classes: list[str], where, key: str) -> int:
    if str(name) not in classes:
        raise DataError(f"{where}: {key} names class {name!r}, which is not in classes {classes}")
    return classes.index(str(name))


def _mask_value(raw, what: str, where) -> int:
    """A mask value of an index mask: a whole number from 0 to 65535 (1.7 or 'one' are refused, not truncated)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 65535:
        raise DataError(f"{where}: {what} must be a whole number from 0 to 65535, not {raw!r}")
    return raw


def _parse_encoding(mask: dict, classes: list[str], where) -> MaskEncoding:
    kind = mask.get("encoding", "index")
    if kind == "index":
        values_in = mask.get("values") or {c: i for i, c in enumerate(classes)}
        values: dict[int, int] = {}
        for name, raws in values_in.items():
            for raw in raws if isinstance(raws, list) else [raws]:
                value = _mask_value(raw, f"the mask value of class {name!r}", where)
                if value in values:
                    raise DataError(f"{where}: mask value {raw} is assigned to two classes")
                values[value] = _class_index(name, classes, where, "mask.values")
        ignore = mask.get("ignore")
        if ignore is not None:
            ignore = _mask_value(ignore, "the ignore value", where)
        if ignore is not None and int(ignore) in values:
            raise DataError(
                f"{where}: the ignore value {ignore} is also the value of class "
                f"{classes[values[int(ignore)]]!r}; that class would be erased. Give unlabelled pixels a value no "
                "class uses"
            )
        return IndexEncoding(values=values, ignore=int(ignore) if ignore is not None else None)
    if kind in ("colour", "color"):
        colours: dict = {}
        for name, specs in (mask.get("colours") or mask.get("colors") or {}).items():
            for spec in specs if isinstance(specs, list) and isinstance(specs[0], (str, list)) else [specs]:
                colours[parse_colour(spec)] = _class_index(name, classes, where, "mask.colours")
        if not colours:
            raise DataError(f"{where}: colour encoding needs 'colours: {{class: '#rrggbb'}}'")
        default = mask.get("default")
        ignore = mask.get("ignore")
        if ignore is not None and parse_colour(ignore) in colours:
            raise DataError(
                f"{where}: the ignore colour {ignore} is also the colour of class "
                f"{classes[colours[parse_colour(ignore)]]!r}; that class would be erased"
            )
        return ColourEncoding(
            colours=colours,
            default=_class_index(default, classes, where, "mask.default") if default is not None else None,
            ignore=parse_colour(ignore) if ignore is not None else None,
        )
    raise DataError(f"{where}: unknown mask encoding {kind!r} (expected 'index' or 'colour')")
