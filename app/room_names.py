"""Generated participant names for a room (adjective-animal): no personal data is asked for.

A name is drawn at random among those not taken; when every pair is taken (a room of more than
1,024) a number is appended, so a name stays unique in its room.
"""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber", "brave", "calm", "clever", "coral", "curious", "eager", "fast",
    "gentle", "golden", "happy", "jolly", "keen", "kind", "lively", "lucky",
    "mellow", "merry", "nimble", "patient", "plucky", "proud", "quick", "quiet",
    "rapid", "sunny", "swift", "tidy", "vivid", "witty", "young", "zesty",
)  # fmt: skip
ANIMALS = (
    "badger", "beaver", "bison", "crane", "dolphin", "eagle", "falcon", "ferret",
    "gecko", "heron", "ibis", "jaguar", "koala", "lemur", "lynx", "marmot",
    "narwhal", "ocelot", "otter", "owl", "panda", "puffin", "quail", "raven",
    "salmon", "seal", "stork", "tapir", "toucan", "walrus", "wombat", "yak",
)  # fmt: skip


def pick_name(taken, rng: random.Random) -> str:
    """A name of the form ``adjective-animal`` not in ``taken``."""
    free = [f"{a}-{b}" for a in ADJECTIVES for b in ANIMALS if f"{a}-{b}" not in taken]
    if free:
        return rng.choice(free)
    n = 2
    while True:  # every pair taken: number them
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}-{n}"
        if name not in taken:
            return name
        n += 1
