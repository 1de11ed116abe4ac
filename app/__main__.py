"""`python -m app`: the studio with no arguments, the `kinemo` command line with arguments."""

import sys


def main() -> int:
    if len(sys.argv) <= 1:
        from app import run_studio

        return run_studio()
    from app.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
