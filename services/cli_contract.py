"""`verkosto contract export [--out FILE]`: the Kafka contract as AsyncAPI 3.0 JSON, the
same document the API serves at /asyncapi.json (topics and server from the settings)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_contract_export(args: argparse.Namespace) -> int:
    from services.api.contract_doc import document_for
    from services.composition import settings_for

    text = json.dumps(document_for(settings_for(args)), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Any) -> None:
    """Adds `contract` and its subcommands to the `verkosto` parser's subcommands."""
    contract = sub.add_parser("contract", help="the machine-readable Kafka contract")
    contract_sub = contract.add_subparsers(dest="contract_command", required=True)
    export = contract_sub.add_parser("export", help="write the AsyncAPI 3.0 document (standard output by default)")
    export.add_argument("--out", help="write to this file instead of standard output")
    export.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    export.set_defaults(func=cmd_contract_export)
