"""Word lists and a small sentence grammar (a few hundred words) shared by the sentence tasks."""

from __future__ import annotations

import numpy as np

# Speech Commands v0.01: ten commands plus the auxiliary words that make up _unknown_.
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
AUXILIARY = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
    "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero",
)  # fmt: skip

NAMES = "anna ben clara david emma frank grace henry iris jack kate leo mary nina oscar paul rose sam tom vera".split()
ADJECTIVES = (
    "big small old new red blue green black white warm cold quiet loud happy tired busy early late "
    "bright dark heavy light short long young strange simple clever gentle angry calm empty full "
    "clean dirty soft hard sweet fresh broken open famous lucky"
).split()
NOUNS = (
    "book car dog cat house garden window door table chair letter river bridge train boat phone "
    "bottle basket road market teacher doctor farmer painter singer student friend neighbour child "
    "baby horse bird tree flower apple orange cake sandwich coffee story song picture camera lamp "
    "bicycle ticket key coat hat shirt shoe bag box map clock computer radio kitchen candle blanket "
    "pencil paper jacket window village tower island forest mountain cloud storm engine wheel ladder "
    "button mirror pocket"
).split()
PLACES = (
    "park station office school library hospital museum harbour beach hotel theatre church "
    "restaurant airport bakery garage cinema castle farm stadium"
).split()
VERBS = {  # base form -> past tense
    "find": "found", "bring": "brought", "take": "took", "see": "saw", "buy": "bought", "sell": "sold",
    "paint": "painted", "clean": "cleaned", "open": "opened", "close": "closed", "carry": "carried",
    "watch": "watched", "fix": "fixed", "move": "moved", "leave": "left", "keep": "kept", "lose": "lost",
    "send": "sent", "build": "built", "draw": "drew", "wash": "washed", "hide": "hid", "borrow": "borrowed",
    "visit": "visited", "follow": "followed", "push": "pushed", "pull": "pulled", "show": "showed",
    "call": "called", "order": "ordered", "check": "checked", "cook": "cooked", "catch": "caught",
}  # fmt: skip
ADVERBS = "quickly slowly carefully quietly suddenly finally easily happily already again today yesterday".split()
TIMES = "tonight tomorrow morning evening monday tuesday friday saturday sunday noon midnight".split()
NUMBERS = "two three four five six seven eight nine ten eleven twelve twenty".split()
PREPOSITIONS = "near behind under beside inside outside across past".split()

TEMPLATES = (
    "the {adj} {noun} was {adv} {past} near the {place}",
    "{name} {past} a {adj} {noun} at the {place}",
    "we will {verb} the {noun} {time}",
    "did you {verb} the {adj} {noun} {prep} the {place}",
    "{name} and {name2} {past} {number} {nouns} {time}",
    "i think the {noun} is too {adj} to {verb}",
    "please {verb} the {adj} {noun} before {time}",
    "it's {adj} {prep} the {place} {time}",
    "they don't {verb} {nouns} at the {place}",
    "my {noun} was {adj} so {name} {past} it {adv}",
    "the {noun} {prep} the {place} looks {adj}",
    "{name} can't {verb} the {noun} without a {noun2}",
)


def plural(noun: str) -> str:
    if noun == "child":
        return "children"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def vocabulary() -> set[str]:
    """Every word the grammar can produce (for docs and tests)."""
    words = {w for t in TEMPLATES for w in t.split() if "{" not in w}
    for group in (NAMES, ADJECTIVES, NOUNS, PLACES, ADVERBS, TIMES, NUMBERS, PREPOSITIONS):
        words.update(group)
    words.update(plural(noun) for noun in NOUNS)
    words.update(VERBS)
    words.update(VERBS.values())
    return words


def sentence(rng: np.random.Generator) -> str:
    """One lower-case sentence from the grammar."""

    def pick(options: list[str] | tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    verb, noun = pick(list(VERBS)), pick(NOUNS)
    name = pick(NAMES)
    return pick(TEMPLATES).format(
        adj=pick(ADJECTIVES), noun=noun, nouns=plural(noun), noun2=pick(NOUNS), place=pick(PLACES), adv=pick(ADVERBS),
        verb=verb, past=VERBS[verb], time=pick(TIMES), number=pick(NUMBERS), prep=pick(PREPOSITIONS),
        name=name, name2=pick([n for n in NAMES if n != name]),
    )  # fmt: skip
