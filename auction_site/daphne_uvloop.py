"""`python -m auction_site.daphne_uvloop <daphne arguments>`: daphne on uvloop's event loop.

daphne runs Twisted's asyncio reactor on the loop that `asyncio.new_event_loop()` gives
when `daphne.server` is first imported, so the loop policy must be set before that.
"""

import asyncio
import sys

import uvloop


def main() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
