"""``python -m avajams.web._probe FILE``: print the video's facts as JSON, or why it is not one.

Run by the server in a child process for every upload, so that a file that crashes or hangs
the decoder costs one short-lived process, never the server.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings


def main(argv: list[str]) -> int:
    from avajams.errors import AvajamsError
    from avajams.media import probe

    if len(argv) != 1:
        print(json.dumps({"ok": False, "message": "usage: python -m avajams.web._probe FILE"}))
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = probe(argv[0])
        except AvajamsError as exc:
            print(json.dumps({"ok": False, "kind": type(exc).__name__, "message": str(exc)}))
            return 1
    print(json.dumps({"ok": True, "info": dataclasses.asdict(info)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
