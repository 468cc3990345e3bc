"""Compile the user-model kernels once (recworld.jit caches the compiled code on disk), so the first run does not pay for it.

Run by ``make setup`` after :mod:`recworld.setup_data`; idempotent, offline,
a few seconds when the cache is already warm.
"""

from __future__ import annotations

import sys


def main() -> int:
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    # A tiny world with every kind of step a run takes (sessions, pages, posts, chats, follows).
    s = load_scenario("quickstart").with_overrides(**{"population.n_users": 40, "ticks": 3, "social.chat_rate": 1.0, "social.post_rate": 1.0})
    build_world(s).run(3)
    print("compiled kernels cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
