"""Command line conversion between KITH Henvisning (or Dialogmelding 1.0/1.1, Epikrise 1.0/1.1/1.2) XML and
the FHIR transaction Bundle that stores it. A Dialogmelding Bundle is written back in the version it was
received as, an Epikrise Bundle as 1.2 (`--to` is for referrals).

    python -m app.adapters.kith convert IN.xml [-o OUT.json] [--xsd-dir DIR]
    python -m app.adapters.kith convert IN.json [--to 2.0|1.1] [-o OUT.xml] [--xsd-dir DIR]

The direction is decided by the content, never by the file name: input whose first non-blank character is
`{` is read as a Bundle (JSON, as written by the first form) and written as Henvisning XML; anything else
goes through the hardened XML parser (`xmlsafe.parse_xml`: no DOCTYPE, size limit). `-` reads stdin.

Errors are one line on stderr and exit status 2: for a message that cannot be accepted, its AppRec code
(Volven 8221) and KithError's message, which names elements and positions but never copies their content;
nothing from the input (patient data) is ever printed. Usage errors exit 2 through argparse.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.from_fhir import epikrise_from_bundle
from app.adapters.epikrise.parse import is_epikrise, parse_epikrise
from app.adapters.epikrise.to_fhir import EXT_MESSAGE as EXT_EPIKRISE
from app.adapters.epikrise.to_fhir import epikrise_to_bundle
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.dialog_fhir import EXT_DIALOG, dialogmelding_from_bundle, dialogmelding_to_bundle
from app.adapters.kith.dialogmelding import build_dialogmelding, is_dialogmelding, parse_dialogmelding
from app.adapters.kith.errors import KithError
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning_tree, serialize_henvisning_tree
from app.adapters.kith.model import HenvisningVersion, Referral
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import DEFAULT_MAX_BYTES, parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator, get_validator

__all__ = ["main"]

PROG = "python -m app.adapters.kith"
EXIT_OK = 0
EXIT_ERROR = 2  # the same status argparse uses for usage errors
TARGETS = {"2.0": HenvisningVersion.V2_0, "1.1": HenvisningVersion.V1_1}
_BOM = b"\xef\xbb\xbf"
# The XSD module logs "validation skipped" once per cause; the CLI prints its own line on every run, so
# the module's record must not also reach stderr through logging's last-resort handler.
_QUIET = logging.NullHandler()


class CliError(Exception):
    """A failure reported as one line on stderr (never with input content in it)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="KITH Henvisning XML <-> FHIR transaction Bundle (JSON).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert = commands.add_parser(
        "convert",
        help="Henvisning XML -> Bundle JSON, or Bundle JSON -> Henvisning XML (decided by the content)",
        description=(
            "Henvisning XML (1.0, 1.1, 2.0) -> FHIR transaction Bundle as JSON, or a referral Bundle "
            "(JSON) -> Henvisning XML. The direction follows the content, not the file name."
        ),
    )
    convert.add_argument("input", metavar="IN", help="input file, or - for stdin")
    convert.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    convert.add_argument(
        "--to",
        choices=sorted(TARGETS),
        default=None,
        help="Henvisning version to write for a JSON input (default 2.0)",
    )
    convert.add_argument(
        "--xsd-dir",
        type=Path,
        metavar="DIR",
        help="validate the XML read or written against the official XSDs in DIR",
    )
    convert.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"size limit of an XML input in bytes (default {DEFAULT_MAX_BYTES})",
    )
    return parser


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from None


def _write(name: str | None, data: bytes) -> None:
    if name is None or name == "-":
        stdout = sys.stdout
        stdout.flush()
        stdout.buffer.write(data)
        stdout.buffer.flush()
        return
    try:
        Path(name).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {name}: {exc.strerror or type(exc).__name__}") from None


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _validate(validator: XsdValidator | None, root: etree._Element, what: str) -> None:
    """KithError (T02) when invalid; a skipped validation is a warning."""
    if validator is None:
        return
    result = validator.check(root)
    if result.skipped:
        _warn(f"XSD validation of the {what} skipped: {result.reason}")


def is_json(data: bytes) -> bool:
    """Whether the input is a Bundle in JSON: its first non-blank character is `{`."""
    return data.lstrip(_BOM).lstrip()[:1] == b"{"


def xml_to_bundle(data: bytes, validator: XsdValidator | None, max_bytes: int) -> bytes:
    root = parse_xml(data, max_bytes=max_bytes)
    _validate(validator, root, "input")
    if is_dialogmelding(root):
        dialog = parse_dialogmelding(root)  # KithError as for a referral
        bundle, _ = dialogmelding_to_bundle(dialog)
        return (json.dumps(bundle, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if is_epikrise(root):
        bundle, _ = epikrise_to_bundle(parse_epikrise(root))
        return (json.dumps(bundle, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    referral = parse_henvisning_tree(root)  # KithError with its AppRec code for what cannot be accepted
    try:
        bundle = referral_to_bundle(referral)
    except Exception as exc:  # a defect of the mapping: its text may quote content, so only its type
        raise CliError(f"the referral cannot be mapped to FHIR ({type(exc).__name__})") from None
    return (json.dumps(bundle, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _load_bundle(data: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(data.removeprefix(_BOM))
    except json.JSONDecodeError as exc:
        raise CliError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError:
        raise CliError("not valid JSON: unreadable encoding") from None
    if not isinstance(loaded, dict) or loaded.get("resourceType") != "Bundle":
        raise CliError("the JSON input is not a FHIR Bundle")
    entries = loaded.get("entry")
    if not isinstance(entries, list) or not any(
        isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "ServiceRequest"
        for e in entries
    ):
        raise CliError("the Bundle holds no ServiceRequest: not a referral")
    return loaded


def _dialog_bundle(data: bytes, marker: str = EXT_DIALOG) -> dict[str, Any] | None:
    """A Bundle of a Dialogmelding (resources with `ext:kith-dialog`; an Epikrise: `ext:kith-epikrise`),
    else None."""
    try:
        loaded = json.loads(data.removeprefix(_BOM))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(loaded, dict):
        return None
    bundle: dict[str, Any] = loaded
    entries = bundle.get("entry")
    if isinstance(entries, list) and any(
        isinstance(e, dict) and isinstance(e.get("resource"), dict) and f.exts(e["resource"], marker)
        for e in entries
    ):
        return bundle
    return None


def bundle_to_xml(data: bytes, version: HenvisningVersion, validator: XsdValidator | None) -> bytes:
    epikrise = _dialog_bundle(data, EXT_EPIKRISE)
    if epikrise is not None:  # written as Epikrise 1.2
        try:
            root = build_epikrise(epikrise_from_bundle(epikrise))
        except KithError:
            raise
        except Exception as exc:
            raise CliError(f"the Bundle cannot be written as an Epikrise ({type(exc).__name__})") from None
        _validate(validator, root, "output")
        return to_bytes(root) + b"\n"
    dialog = _dialog_bundle(data)
    if dialog is not None:  # written in the Dialogmelding version it was received as
        try:
            root = build_dialogmelding(dialogmelding_from_bundle(dialog))
        except KithError:
            raise
        except Exception as exc:
            raise CliError(
                f"the Bundle cannot be written as a Dialogmelding ({type(exc).__name__})"
            ) from None
        _validate(validator, root, "output")
        return to_bytes(root) + b"\n"
    bundle = _load_bundle(data)
    try:
        referral: Referral = referral_from_bundle(bundle)
        root = serialize_henvisning_tree(referral, version)
    except KithError:
        raise
    except Exception as exc:  # any failure of the mapping: its text may quote content, so only its type
        raise CliError(
            f"the Bundle cannot be written as Henvisning {version.value} ({type(exc).__name__})"
        ) from None
    _validate(validator, root, "output")
    return to_bytes(root) + b"\n"


def convert(args: argparse.Namespace) -> int:
    data = _read(args.input)
    if args.xsd_dir is not None and not args.xsd_dir.is_dir():
        raise CliError(f"--xsd-dir {args.xsd_dir} is not a directory")
    validator = None if args.xsd_dir is None else get_validator(args.xsd_dir)
    if is_json(data):
        out = bundle_to_xml(data, TARGETS[args.to or "2.0"], validator)
    else:
        if args.to is not None:
            _warn("--to applies to a JSON input only; ignored for XML")
        out = xml_to_bundle(data, validator, args.max_bytes)
    _write(args.output, out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logger = logging.getLogger("app.adapters.kith.xsd")
    if _QUIET not in logger.handlers:
        logger.addHandler(_QUIET)
    try:
        return convert(args)
    except KithError as exc:
        print(f"error: {exc.code.value} ({exc.description}): {exc.message}", file=sys.stderr)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_ERROR
