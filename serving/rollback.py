"""Roll a served model back to an earlier pushed version, in a way TF Serving itself honours.

    python -m serving.rollback --model_base_path outputs/serving/taxi --reason "bad tips in span 7"
    python -m serving.rollback --model_base_path outputs/serving/taxi --to 1795854751 --reason ...

TF Serving (latest-version policy) serves the highest integer folder in the base path. Rolling
back renames every version above the target to `.rolled_back-<version>` in the same folder: a
name no TF Serving release parses as a version, and an atomic rename, so a polling server swaps
to the target within one poll and never sees a half-moved model. Each rollback is appended to
`rollbacks.jsonl` in the base path (when, who, why, from, to); nothing is deleted.
"""

import argparse
import datetime
import getpass
import json
import os
import sys

from serving.versions import version_folders

ROLLED_BACK_PREFIX = ".rolled_back-"
LOG_NAME = "rollbacks.jsonl"


class RollbackError(ValueError):
    """The rollback cannot be done; the message says why and what to do."""


def rollback(base_path: str, reason: str, to_version: int | None = None) -> dict:
    """Moves the versions above the target aside; returns the logged record."""
    if not reason.strip():
        raise RollbackError("say why (--reason): the rollback log is how others learn of it")
    versions = sorted(version_folders(base_path))
    if not versions:
        raise RollbackError(f"no versions under {base_path}; nothing to roll back")
    if to_version is None:
        if len(versions) < 2:
            raise RollbackError(
                f"only version {versions[0]} is present under {base_path}; there is no earlier "
                "version to roll back to"
            )
        to_version = versions[-2]
    elif to_version not in versions:
        raise RollbackError(
            f"version {to_version} is not present under {base_path}; present: {versions}"
        )
    elif to_version == versions[-1]:
        raise RollbackError(f"version {to_version} is already the highest (served) version")
    moved = [v for v in versions if v > to_version]
    for version in sorted(moved, reverse=True):
        os.rename(
            os.path.join(base_path, str(version)),
            os.path.join(base_path, f"{ROLLED_BACK_PREFIX}{version}"),
        )
    record = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "user": getpass.getuser(),
        "reason": reason,
        "from_version": max(moved),
        "to_version": to_version,
        "moved_aside": sorted(moved),
    }
    with open(os.path.join(base_path, LOG_NAME), "a") as handle:
        handle.write(json.dumps(record) + "\n")
    return record


def rolled_back_versions(base_path: str) -> list[int]:
    if not os.path.isdir(base_path):
        return []
    return sorted(
        int(name[len(ROLLED_BACK_PREFIX) :])
        for name in os.listdir(base_path)
        if name.startswith(ROLLED_BACK_PREFIX) and name[len(ROLLED_BACK_PREFIX) :].isdigit()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.rollback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model_base_path",
        default=os.path.join("outputs", "serving", "taxi"),
        help="the model's folder of integer versions (default: %(default)s)",
    )
    parser.add_argument("--reason", required=True, help="why; recorded in rollbacks.jsonl")
    parser.add_argument(
        "--to", type=int, dest="to_version", help="version to serve (default: the one before)"
    )
    args = parser.parse_args(argv)
    try:
        record = rollback(args.model_base_path, args.reason, args.to_version)
    except (RollbackError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"Rolled back {args.model_base_path}: now serving version {record['to_version']} "
        f"(moved aside: {', '.join(map(str, record['moved_aside']))}); logged in "
        f"{os.path.join(args.model_base_path, LOG_NAME)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
