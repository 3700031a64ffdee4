"""Build the demo model's training corpus: templated chat pairs for the built-in concepts.

Replies come from a small grammar (templates x topics x vocabulary) written for this project, so
that every built-in concept (sentiment, formal, polite, truthful) has replies of both polarities
for the same prompts, plus neutral everyday chat. The built-in concept examples
(``odesteer_core/concepts/builtin/*.jsonl``), a filtered selection
of Debian ``fortunes`` and, when given, TruthfulQA are mixed in. The output is deterministic for a
given seed and set of inputs::

    python scripts/build_demo_corpus.py --truthfulqa PATH/TO/TruthfulQA.csv

writes ``data/demo_corpus/{train,heldout}.jsonl.gz``, ``eval_prompts.json`` (held-out everyday
prompts that appear neither in the corpus nor in the concept files) and ``manifest.json``.
Each corpus line is ``{"messages": [...], "concept": ..., "label": ..., "source": ...}``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONCEPT_DIR = ROOT / "odesteer_core" / "concepts" / "builtin"
OUT_DIR = ROOT / "data" / "demo_corpus"
FORTUNES_DIR = Path("/usr/share/games/fortunes")
SEED = 20240611

Record = dict[str, object]
Rng = random.Random

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def cap(s: str) -> str:
    """Upper-case the first character."""
    return s[:1].upper() + s[1:] if s else s


def pick(rng: Rng, seq: Sequence[str]) -> str:
    return seq[rng.randrange(len(seq))]


def tidy(s: str) -> str:
    """Collapse spaces and fix spacing around punctuation."""
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r" ([,.;!?])", r"\1", s)
    s = re.sub(r"([.!?])\.", r"\1", s)
    s = s.replace(",.", ".").replace(";.", ".")
    return s


def chat(prompt: str, reply: str, concept: str, label: str, source: str = "grammar") -> Record:
    return {
        "messages": [
            {"role": "user", "content": tidy(prompt)},
            {"role": "assistant", "content": tidy(reply)},
        ],
        "concept": concept,
        "label": label,
        "source": source,
    }


def norm(s: str) -> str:
    """Lower-case letters and digits only: the key used to compare prompts."""
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


NUM_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy"}


def num_word(n: int) -> str:
    if n <= 20:
        return NUM_WORDS[n]
    t, u = divmod(n, 10)
    return TENS[t * 10] + ("" if u == 0 else "-" + NUM_WORDS[u])


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = [
    ("nine o'clock", "nine"),
    ("ten o'clock", "ten"),
    ("half past ten", "half ten"),
    ("eleven o'clock", "eleven"),
    ("noon", "lunchtime"),
    ("half past one", "half one"),
    ("two o'clock", "two"),
    ("three o'clock", "three"),
    ("a quarter past four", "quarter past four"),
    ("five o'clock", "five"),
    ("six o'clock", "six"),
    ("seven o'clock", "seven"),
    ("half past seven", "half seven"),
    ("eight o'clock", "eight"),
]
NAMES = [
    "Anna",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Finn",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kate",
    "Leo",
    "Maya",
    "Noah",
    "Olivia",
    "Priya",
    "Sam",
    "Tom",
    "Uma",
    "Zoe",
    "Ravi",
    "Lucy",
    "Omar",
    "Nina",
    "Marco",
    "Elena",
    "Joe",
    "Hannah",
    "Luis",
    "Amir",
    "Rosa",
    "Adam",
    "Ellie",
    "Mark",
    "Sara",
]
CITIES = [
    "Rome",
    "Paris",
    "Lisbon",
    "Madrid",
    "Berlin",
    "Vienna",
    "Prague",
    "Dublin",
    "Edinburgh",
    "York",
    "Bristol",
    "Barcelona",
    "Amsterdam",
    "Copenhagen",
    "Oslo",
    "Athens",
    "Venice",
    "Florence",
    "Seville",
    "Krakow",
    "Budapest",
    "Boston",
    "Chicago",
    "Toronto",
    "Sydney",
    "Tokyo",
    "Kyoto",
    "Seoul",
    "Cairo",
    "Marrakesh",
    "Naples",
    "Porto",
    "Brighton",
    "Cornwall",
    "Bath",
]

# Tense markers used inside sentiment templates: {was} -> was / is, and so on.
TENSES: dict[str, dict[str, str]] = {
    "past": {
        "was": "was",
        "were": "were",
        "It_was": "It was",
        "it_was": "it was",
        "felt": "felt",
        "made": "made",
        "had": "had",
        "loved": "loved",
        "hated": "hated",
        "enjoyed": "enjoyed",
        "looked": "looked",
        "tasted": "tasted",
        "sounded": "sounded",
        "seemed": "seemed",
        "there_was": "there was",
        "There_was": "There was",
        "kept": "kept",
        "got": "got",
    },
    "present": {
        "was": "is",
        "were": "are",
        "It_was": "It's",
        "it_was": "it's",
        "felt": "feels",
        "made": "makes",
        "had": "has",
        "loved": "love",
        "hated": "hate",
        "enjoyed": "enjoy",
        "looked": "looks",
        "tasted": "tastes",
        "sounded": "sounds",
        "seemed": "seems",
        "there_was": "there's",
        "There_was": "There's",
        "kept": "keeps",
        "got": "gets",
    },
}

_SLOT = re.compile(r"\{([A-Za-z_]+)\}")


def fill(
    template: str, rng: Rng, polarity: str, tense: str, slots: dict[str, Sequence[str]]
) -> str:
    """Fill {slot}s: tense markers, polarity pools (UPPER case) and neutral slot lists."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in TENSES[tense]:
            return TENSES[tense][key]
        if key in POOLS:
            return pick(rng, POOLS[key][0 if polarity == "positive" else 1])
        if key in slots:
            return pick(rng, slots[key])
        raise KeyError(f"unknown slot {key!r} in {template!r}")

    return _SLOT.sub(sub, template)


# --------------------------------------------------------------------------------------------
# Sentiment: positive vs negative replies about the same topic
# --------------------------------------------------------------------------------------------

# Polarity-dependent adjective pools: (positive, negative).
POOLS: dict[str, tuple[list[str], list[str]]] = {
    "FOOD": (
        [
            "delicious",
            "fresh",
            "tasty",
            "full of flavour",
            "perfectly cooked",
            "warm and fresh",
            "really good",
            "lovely",
            "spot on",
            "generous",
        ],
        [
            "bland",
            "cold",
            "stale",
            "greasy",
            "overcooked",
            "tasteless",
            "soggy",
            "burnt",
            "dry",
            "disappointing",
        ],
    ),
    "DRINK": (
        ["rich and smooth", "lovely and strong", "perfect", "fresh and cold", "really good"],
        ["bitter", "weak and watery", "lukewarm", "flat", "far too sweet"],
    ),
    "STAFF": (
        [
            "friendly",
            "kind",
            "helpful",
            "cheerful",
            "quick and polite",
            "really welcoming",
            "warm and attentive",
            "lovely",
        ],
        [
            "rude",
            "grumpy",
            "unhelpful",
            "slow and careless",
            "cold",
            "really unfriendly",
            "bored and sloppy",
            "dismissive",
        ],
    ),
    "PLACE": (
        [
            "bright and cosy",
            "clean and calm",
            "spacious",
            "charming",
            "quiet and peaceful",
            "warm and welcoming",
            "beautifully kept",
            "relaxed",
        ],
        [
            "dark and cramped",
            "dirty",
            "noisy",
            "shabby",
            "cold and gloomy",
            "crowded and stuffy",
            "run down",
            "chaotic",
        ],
    ),
    "PRICE": (
        ["fair", "very reasonable", "lower than I expected", "good value"],
        ["far too high", "a total rip-off", "higher than I expected", "silly"],
    ),
    "WEATHER": (
        ["sunny and warm", "bright and clear", "mild and pleasant", "perfect", "glorious"],
        ["cold and wet", "grey and windy", "freezing", "miserable", "stormy", "wet and grim"],
    ),
    "MUSIC": (
        ["beautiful", "catchy", "lively", "moving", "brilliant", "so uplifting"],
        ["dull", "muddy", "far too loud", "boring", "out of tune", "forgettable"],
    ),
    "STORY": (
        ["gripping", "clever", "moving", "funny", "exciting", "heartwarming"],
        ["boring", "confusing", "predictable", "silly", "slow", "pointless"],
    ),
    "ACTING": (
        ["superb", "convincing", "wonderful", "brilliant"],
        ["wooden", "flat", "awkward", "painful to watch"],
    ),
    "VIEW": (
        ["stunning", "breathtaking", "gorgeous", "lovely", "spectacular"],
        ["dull", "ugly", "hidden by fog", "spoiled by building work", "grey and bleak"],
    ),
    "CROWD": (
        ["friendly", "cheerful", "relaxed", "full of energy", "warm and chatty"],
        ["rowdy", "rude", "pushy", "bored", "grumpy"],
    ),
    "ROOM": (
        ["spotless", "bright", "comfortable", "roomy", "cosy", "clean and airy"],
        ["grimy", "tiny", "damp", "stuffy", "cold", "dusty"],
    ),
    "GADGET": (
        ["fast", "reliable", "easy to use", "smooth", "sleek", "really clever"],
        ["slow", "buggy", "clunky", "confusing", "flimsy", "a nightmare to use"],
    ),
    "PERSON": (
        ["kind", "friendly", "thoughtful", "generous", "cheerful", "patient", "easy-going"],
        ["rude", "grumpy", "selfish", "nosy", "moody", "impatient", "cold"],
    ),
    "WORK": (
        ["interesting", "rewarding", "calm", "well organised", "varied", "satisfying"],
        ["stressful", "boring", "chaotic", "exhausting", "repetitive", "thankless"],
    ),
    "TRAVEL": (
        ["smooth", "easy", "quick", "comfortable", "on time", "relaxing"],
        ["slow", "bumpy", "exhausting", "packed", "delayed", "stressful"],
    ),
    "GAME": (
        ["exciting", "close", "thrilling", "fun", "great to watch"],
        ["dull", "one-sided", "scrappy", "boring", "frustrating"],
    ),
    "TEACH": (
        ["clear", "patient", "encouraging", "inspiring", "well prepared"],
        ["confusing", "impatient", "dull", "disorganised", "rushed"],
    ),
    "STREET": (
        ["clean and leafy", "quiet", "safe", "lively", "pretty"],
        ["dirty", "noisy", "unsafe", "empty", "run down"],
    ),
    "GOOD": (
        ["great", "lovely", "wonderful", "fantastic", "brilliant", "excellent", "superb"],
        ["awful", "terrible", "dreadful", "horrible", "rotten", "dismal", "grim"],
    ),
}

# Opening words of a reply, by polarity. Each entry is filled with the tense markers.
OPENERS = {
    "positive": [
        "{It_was} great.",
        "{It_was} lovely.",
        "{It_was} wonderful!",
        "I {loved} it.",
        "Really good, thanks for asking.",
        "Honestly, {it_was} fantastic.",
        "Brilliant!",
        "{It_was} a real treat.",
        "Absolutely wonderful.",
        "I really {enjoyed} it.",
        "Oh, {it_was} amazing!",
        "Lovely, thanks.",
        "{It_was} better than I hoped.",
        "Pretty great, actually.",
        "So good!",
        "{It_was} a delight.",
        "Wonderful, really.",
        "I {loved} every minute.",
        "{It_was} excellent.",
        "Really lovely.",
        "Fantastic!",
        "{It_was} such fun.",
        "Great, thanks!",
        "{It_was} most enjoyable.",
        "Honestly? Superb.",
        "{It_was} just perfect.",
    ],
    "negative": [
        "{It_was} awful.",
        "{It_was} terrible.",
        "Not great, to be honest.",
        "I {hated} it.",
        "Pretty miserable, to be honest.",
        "Honestly, {it_was} dreadful.",
        "A real letdown.",
        "{It_was} a disaster.",
        "Absolutely awful.",
        "I really didn't like it.",
        "Oh, {it_was} grim.",
        "Bad, sadly.",
        "{It_was} worse than I feared.",
        "Pretty awful, actually.",
        "So disappointing.",
        "{It_was} a mess.",
        "Dreadful, really.",
        "I {hated} every minute.",
        "{It_was} horrible.",
        "Really poor.",
        "Awful!",
        "{It_was} no fun at all.",
        "Bad, thanks for asking.",
        "{It_was} most unpleasant.",
        "Honestly? Rotten.",
        "{It_was} just miserable.",
    ],
}
ONE_WORD = {
    "positive": [
        "Wonderful",
        "Lovely",
        "Brilliant",
        "Fantastic",
        "Delightful",
        "Great",
        "Superb",
        "Amazing",
        "Charming",
        "Perfect",
        "Glorious",
        "Excellent",
    ],
    "negative": [
        "Awful",
        "Dreadful",
        "Miserable",
        "Terrible",
        "Disappointing",
        "Grim",
        "Dismal",
        "Horrible",
        "Painful",
        "Dreary",
        "Rotten",
        "Useless",
    ],
}
GENERIC_CLAUSES = {
    "positive": [
        "everyone {was} in a great mood",
        "I would happily do it again",
        "it put a big smile on my face",
        "I felt great afterwards",
        "I came away feeling happy and relaxed",
        "it {made} my whole week",
        "it really lifted my spirits",
        "{it_was} the highlight of my week",
        "it {was} so much better than I expected",
        "the whole thing {felt} easy and fun",
    ],
    "negative": [
        "everyone {was} in a foul mood",
        "I would never do it again",
        "it put me in a bad mood",
        "I felt awful afterwards",
        "I came away feeling tired and fed up",
        "it ruined my whole week",
        "it really got me down",
        "{it_was} the low point of my week",
        "it {was} so much worse than I expected",
        "the whole thing {felt} hard and joyless",
    ],
}
CLOSERS = {
    "place": (
        [
            "I'll definitely go back.",
            "Highly recommended!",
            "I'd recommend it to anyone.",
            "It's my new favourite spot.",
            "You should try it!",
            "I'm already planning my next visit.",
        ],
        [
            "I won't be going back.",
            "I wouldn't recommend it.",
            "Avoid it if you can.",
            "Never again.",
            "Save your money.",
            "I'm not in a hurry to return.",
        ],
    ),
    "event": (
        [
            "I'd do it again in a heartbeat.",
            "What a day!",
            "One to remember.",
            "I'm still smiling about it.",
            "Best time I've had in ages.",
            "I can't wait for the next one.",
        ],
        [
            "I'm glad it's over.",
            "What a waste of a day.",
            "Never again.",
            "I just wanted to go home.",
            "Worst time I've had in ages.",
            "I'm still annoyed about it.",
        ],
    ),
    "person": (
        [
            "We're lucky to have them.",
            "I'm glad we met.",
            "Everyone likes them.",
            "They've made a real difference.",
            "I couldn't ask for better.",
        ],
        [
            "I try to avoid them.",
            "I wish they'd move on.",
            "Nobody likes them much.",
            "They make everything harder.",
            "I could do without them.",
        ],
    ),
    "object": (
        [
            "Best thing I've bought all year.",
            "I'd buy it again.",
            "Worth every penny.",
            "I'm really happy with it.",
            "I use it every day.",
        ],
        [
            "I want my money back.",
            "I regret buying it.",
            "What a waste of money.",
            "I'm sending it back.",
            "I barely use it now.",
        ],
    ),
    "media": (
        [
            "I'd watch it again.",
            "Highly recommended!",
            "You'll love it.",
            "I can't stop thinking about it.",
            "Five stars from me.",
        ],
        [
            "I wouldn't bother.",
            "Skip it.",
            "I nearly walked out.",
            "I want those hours back.",
            "One star from me.",
        ],
    ),
}


class Topic:
    """A family of sentiment prompts sharing subjects, tense and reply clauses."""

    def __init__(
        self,
        name: str,
        kind: str,
        prompts: dict[str, list[str]],
        subjects: list[str],
        clauses: list[str],
        pos: list[str],
        neg: list[str],
        slots: dict[str, Sequence[str]] | None = None,
        weight: float = 1.0,
    ) -> None:
        self.name, self.kind, self.prompts, self.subjects = name, kind, prompts, subjects
        self.clauses, self.pos, self.neg = clauses, pos, neg
        self.slots = slots or {}
        self.weight = weight


def _places() -> list[str]:
    out = []
    for adj in ["new", "little", "old", "fancy", "cheap", "busy", "family-run", "quiet"]:
        for noun in [
            "bakery",
            "café",
            "pizza place",
            "noodle bar",
            "bistro",
            "diner",
            "pub",
            "tea room",
            "burger place",
            "ice cream shop",
            "restaurant",
            "deli",
            "curry house",
            "taco stand",
            "sandwich shop",
            "coffee shop",
            "steakhouse",
            "vegan café",
            "fish and chip shop",
            "dumpling bar",
        ]:
            for loc in [
                "",
                "on the corner",
                "by the station",
                "near the park",
                "on Main Street",
                "in town",
                "across the road",
                "near your office",
                "by the harbour",
                "on the high street",
                "next to the cinema",
            ]:
                out.append(f"the {adj} {noun} {loc}".strip())
    return out


PAST_PROMPTS = [
    "How was {X}?",
    "What did you think of {X}?",
    "Did you enjoy {X}?",
    "How did you find {X}?",
    "Was {X} any good?",
    "So, how was {X}?",
    "Tell me about {X}.",
    "What was {X} like?",
    "How was {X} in the end?",
    "Any thoughts on {X}?",
]
PRESENT_PROMPTS = [
    "What do you think of {X}?",
    "What's {X} like?",
    "How do you like {X}?",
    "Do you like {X}?",
    "What's your opinion of {X}?",
    "Is {X} any good?",
    "How would you describe {X}?",
    "What are your thoughts on {X}?",
    "How are you finding {X}?",
    "Would you recommend {X}?",
]

FOOD_SLOTS = {
    "food": [
        "bread",
        "soup",
        "pasta",
        "pizza",
        "curry",
        "fish",
        "salad",
        "cake",
        "pie",
        "burger",
        "stew",
        "noodles",
        "roast chicken",
        "dessert",
        "chips",
        "lasagne",
        "risotto",
        "apple tart",
        "cheesecake",
        "bacon sandwich",
        "omelette",
        "steak",
    ],
    "drink": [
        "coffee",
        "tea",
        "lemonade",
        "hot chocolate",
        "orange juice",
        "wine",
        "cider",
        "milkshake",
    ],
}

TOPICS: list[Topic] = [
    Topic(
        "food_place",
        "place",
        {
            "past": PAST_PROMPTS
            + ["Write a short review of {X}.", "How was lunch at {X}?", "How was dinner at {X}?"],
            "present": PRESENT_PROMPTS,
        },
        _places(),
        [
            "the {food} {was} {FOOD}",
            "the {drink} {was} {DRINK}",
            "the staff {were} {STAFF}",
            "the place {felt} {PLACE}",
            "the prices {were} {PRICE}",
            "the {food} {tasted} {FOOD}",
            "the waiters {were} {STAFF}",
            "the portions {were} {FOOD}",
            "the room {felt} {PLACE}",
        ],
        [
            "we got a lovely table by the window",
            "our food came out quickly",
            "the owner came over to chat",
            "the menu had something for everyone",
            "they gave us a free dessert",
            "the music was soft and relaxing",
        ],
        [
            "we waited forty minutes for a table",
            "our food came out cold",
            "nobody came to take our order",
            "the menu was tiny and overpriced",
            "they got our order wrong twice",
            "the music was so loud we couldn't talk",
        ],
        FOOD_SLOTS,
        weight=2.0,
    ),
    Topic(
        "trip",
        "event",
        {
            "past": [
                "How was your trip to {city}?",
                "How was your holiday in {city}?",
                "Tell me about your trip to {city}.",
                "How was {city}?",
                "Did you enjoy {city}?",
                "What was {city} like?",
                "How was your weekend in {city}?",
                "How did you find {city}?",
                "Tell me about the last trip you took.",
                "How was your holiday?",
                "How was the trip?",
                "How was your weekend away?",
                "How was the drive to {city}?",
                "How was your week in {city}?",
            ]
        },
        [""],
        [
            "the weather {was} {WEATHER}",
            "the food {was} {FOOD}",
            "the hotel {was} {ROOM}",
            "the people {were} {PERSON}",
            "the views {were} {VIEW}",
            "the journey {was} {TRAVEL}",
            "the streets {were} {STREET}",
            "the old town {was} {PLACE}",
            "the beaches {were} {PLACE}",
        ],
        [
            "we found a tiny restaurant with the best pasta of my life",
            "everyone we met was friendly and welcoming",
            "the sun shone every single day",
            "we walked for miles and saw so much",
            "the museums were free and fascinating",
            "our room had a balcony over the sea",
            "the trains were fast and on time",
        ],
        [
            "we got food poisoning on the second night",
            "everyone we met seemed annoyed with us",
            "it rained every single day",
            "we got lost and missed half the sights",
            "the museums were shut for repairs",
            "our room faced a building site",
            "the trains were late and packed",
        ],
        {"city": CITIES},
        weight=1.5,
    ),
    Topic(
        "event",
        "event",
        {"past": PAST_PROMPTS + ["How did {X} go?"]},
        [
            f"{e}{t}"
            for e in [
                "the concert",
                "the family barbecue",
                "the wedding",
                "the office party",
                "the music festival",
                "the birthday party",
                "the quiz night",
                "the book club",
                "the school concert",
                "the street party",
                "the gig",
                "the dinner party",
                "the christening",
                "the open day",
                "the charity run",
                "the craft fair",
                "the fireworks",
                "the New Year party",
                "the work trip",
                "the retirement party",
                "the baby shower",
                "the graduation",
                "the conference",
                "the theatre trip",
                "the museum trip",
                "the garden party",
                "the beach day",
                "the boat trip",
                "the reunion",
                "the comedy night",
                "the karaoke night",
                "the wine tasting",
            ]
            for t in [
                "",
                " last night",
                " on Saturday",
                " yesterday",
                " last weekend",
                " on Friday",
                " this afternoon",
            ]
        ],
        [
            "the music {was} {MUSIC}",
            "the food {was} {FOOD}",
            "the crowd {was} {CROWD}",
            "the weather {was} {WEATHER}",
            "the venue {was} {PLACE}",
            "the company {was} {GOOD}",
            "the speeches {were} {STORY}",
            "the band {was} {MUSIC}",
            "the organisers {were} {STAFF}",
        ],
        [
            "everyone danced until midnight",
            "the crowd sang along to every song",
            "I met some lovely new people",
            "it all ran like clockwork",
            "the speeches made everyone laugh",
            "we stayed out much later than planned",
            "there was plenty of food for everyone",
        ],
        [
            "half the guests left early",
            "the crowd talked through every song",
            "I didn't know a single person there",
            "everything ran an hour late",
            "the speeches went on forever",
            "we left before it even finished",
            "the food ran out in the first hour",
        ],
        weight=1.6,
    ),
    Topic(
        "test",
        "event",
        {
            "past": [
                "How did {X} go?",
                "How was {X}?",
                "Tell me about {X}.",
                "So, how did {X} go?",
                "How did you get on in {X}?",
            ]
        },
        [
            "your driving test",
            "the job interview",
            "the exam",
            "your maths exam",
            "the audition",
            "your presentation",
            "the piano exam",
            "your first day at work",
            "the big meeting",
            "the interview this morning",
            "your first day at the new job",
            "your swimming test",
            "the spelling test",
            "your French exam",
            "the team review",
        ],
        [
            "the examiner {was} {STAFF}",
            "the questions {were} {GOOD}",
            "my nerves {were} under control",
            "the room {was} {PLACE}",
        ],
        [
            "I passed first time",
            "I answered every question with confidence",
            "I got exactly the result I wanted",
            "I remembered everything I had practised",
            "my hands stopped shaking after a minute",
            "everyone smiled the whole time",
        ],
        [
            "I failed on the very first question",
            "my mind went completely blank",
            "I got a terrible result",
            "I forgot everything I had practised",
            "my hands shook the whole time",
            "everyone looked bored the whole time",
        ],
    ),
    Topic(
        "day",
        "event",
        {
            "past": [
                "How was your {day}?",
                "How was your day?",
                "How's your day been?",
                "How was work today?",
                "How was school today?",
                "How was your {day} off?",
                "How did your {day} go?",
                "Good {day}?",
            ]
        },
        [""],
        [
            "work {was} {WORK}",
            "the weather {was} {WEATHER}",
            "the commute {was} {TRAVEL}",
            "my mood {was} {GOOD}",
            "lunch {was} {FOOD}",
        ],
        [
            "I got loads done",
            "I had lunch with an old friend",
            "the sun came out in the afternoon",
            "my boss praised my work",
            "I finally finished my book",
            "the kids were in a great mood",
            "I went for a long walk in the park",
            "everything went to plan",
            "I got home early and cooked a nice dinner",
            "I had a lovely chat with my mum",
        ],
        [
            "nothing went right",
            "I missed the bus and got soaked",
            "my laptop crashed twice",
            "I had a headache all day",
            "the meeting ran two hours over",
            "I burnt the dinner",
            "I got stuck in traffic for an hour",
            "everything went wrong",
            "I got home late and too tired to cook",
            "I had a row with my brother",
        ],
        {"day": DAYS + ["morning", "weekend", "week", "evening", "birthday", "first day back"]},
        weight=1.4,
    ),
    Topic(
        "home",
        "place",
        {
            "present": [
                "How do you like {X}?",
                "What's {X} like?",
                "How are you finding {X}?",
                "Are you happy in {X}?",
                "Tell me about {X}.",
                "Describe {X}.",
            ]
        },
        [
            "your new apartment",
            "the new house",
            "your new flat",
            "your room",
            "the new office",
            "your new place",
            "the cottage",
            "your student room",
            "the new classroom",
            "your new studio",
            "the house you're renting",
            "your new bedroom",
        ],
        [
            "the rooms {were} {ROOM}",
            "the neighbours {were} {PERSON}",
            "the street {was} {STREET}",
            "the kitchen {was} {ROOM}",
            "the view from the window {was} {VIEW}",
            "the whole place {felt} {PLACE}",
            "the rent {was} {PRICE}",
        ],
        [
            "there's a little garden full of roses",
            "it gets sun all afternoon",
            "the heating works perfectly",
            "it's a short walk to everything",
            "I sleep really well there",
            "the landlord fixes things straight away",
        ],
        [
            "there's mould in the bathroom",
            "it never gets any sun",
            "the heating barely works",
            "it's miles from anything",
            "I can't sleep for the noise",
            "the landlord never fixes anything",
        ],
    ),
    Topic(
        "person",
        "person",
        {
            "present": [
                "What's {X} like?",
                "What do you think of {X}?",
                "How do you get on with {X}?",
                "Tell me about {X}.",
                "Do you like {X}?",
                "How is {X}?",
                "What's your opinion of {X}?",
            ]
        },
        [
            "your new neighbour",
            "your new boss",
            "your flatmate",
            "the new teacher",
            "the new manager",
            "your landlord",
            "your new colleague",
            "the new coach",
            "your doctor",
            "your study partner",
            "the new vet",
            "the head teacher",
            "your new neighbours",
            "the new intern",
            "your team leader",
            "your driving instructor",
            "your piano teacher",
            "the new babysitter",
            "your son's teacher",
            "the new caretaker",
            "the guy next door",
            "your mother-in-law",
            "your new roommate",
            "the new chef",
        ],
        [
            "they {were} {PERSON}",
            "they {were} always {PERSON}",
            "everyone says they {were} {PERSON}",
        ],
        [
            "they always say hello",
            "they brought us a cake when we moved in",
            "they helped me carry my shopping",
            "they really listen",
            "they keep everyone calm",
            "they are happy to explain things twice",
            "they remember everyone's name",
            "they always have time for a chat",
            "they go out of their way to help",
            "they make everyone laugh",
        ],
        [
            "they never say hello",
            "they play loud music until two in the morning",
            "they complain about everything",
            "they never listen",
            "they take credit for our work",
            "they park across our driveway",
            "they are always late",
            "they shout at people",
            "they gossip about everyone",
            "they never help anyone",
        ],
        weight=1.3,
    ),
    Topic(
        "object",
        "object",
        {
            "present": [
                "How do you like {X}?",
                "What do you think of {X}?",
                "How's {X}?",
                "Are you happy with {X}?",
                "How are you finding {X}?",
                "Is {X} any good?",
                "Would you recommend {X}?",
                "Tell me about {X}.",
            ]
        },
        [
            f"{w} {o}"
            for w in ["your new", "the new"]
            for o in [
                "phone",
                "laptop",
                "bike",
                "car",
                "app",
                "headset",
                "coffee machine",
                "fitness tracker",
                "sofa",
                "camera",
                "printer",
                "tablet",
                "kettle",
                "watch",
                "vacuum cleaner",
                "mattress",
                "washing machine",
                "desk chair",
                "fridge",
                "tent",
                "backpack",
                "jacket",
                "oven",
                "smart speaker",
                "e-reader",
                "guitar",
                "scooter",
            ]
        ],
        [
            "it {was} {GADGET}",
            "it {looked} {GOOD}",
            "the price {was} {PRICE}",
            "the design {was} {GOOD}",
        ],
        [
            "the battery lasts all day",
            "it does everything I need",
            "it feels really solid",
            "it saves me so much time",
            "it was easy to set up",
            "it looks great in the flat",
            "it works perfectly every time",
            "the camera is stunning",
        ],
        [
            "the battery dies by lunchtime",
            "it can't do half of what they promised",
            "it feels cheap and flimsy",
            "it wastes so much of my time",
            "it took hours to set up",
            "it looks ugly in the flat",
            "it breaks down every week",
            "the camera is grainy",
        ],
        weight=1.3,
    ),
    Topic(
        "media",
        "media",
        {
            "past": [
                "What did you think of {X}?",
                "How was {X}?",
                "Did you like {X}?",
                "Did you enjoy {X}?",
                "Any good, {X}?",
                "Tell me about {X}.",
                "Write a short review of {X}.",
                "What was {X} like?",
            ]
        },
        [
            f"the {a}{m}"
            for a in ["", "new "]
            for m in [
                "film",
                "detective show",
                "book you were reading",
                "album",
                "play",
                "documentary",
                "video game",
                "podcast",
                "musical",
                "comedy show",
                "cartoon",
                "novel",
                "ballet",
                "opera",
                "spy film",
                "horror film",
                "cookery show",
                "series",
                "magic show",
                "dance show",
                "exhibition",
                "football film",
                "war film",
                "romantic comedy",
            ]
        ],
        [
            "the story {was} {STORY}",
            "the acting {was} {ACTING}",
            "the songs {were} {MUSIC}",
            "the ending {was} {STORY}",
            "the characters {felt} {GOOD}",
            "the pace {was} {GOOD}",
            "the jokes {were} {STORY}",
        ],
        [
            "I couldn't put it down",
            "the ending made me cry happy tears",
            "I laughed from start to finish",
            "the characters felt real",
            "every scene was beautifully made",
            "I was hooked from the first minute",
        ],
        [
            "I could barely finish it",
            "the ending made no sense at all",
            "I didn't laugh once",
            "the characters felt flat",
            "every scene dragged on",
            "I was bored from the first minute",
        ],
        weight=1.3,
    ),
    Topic(
        "town",
        "place",
        {
            "present": [
                "What do you think of {X}?",
                "What's {X} like?",
                "Describe {X}.",
                "How do you like {X}?",
                "Do you like living in {X}?",
                "Tell me about {X}.",
            ]
        },
        [
            "the city you live in",
            "your town",
            "your new neighbourhood",
            "the town centre",
            "your village",
            "the seaside town",
            "your hometown",
            "the suburbs",
            "the old quarter",
            "the area around the station",
            "the city centre",
        ]
        + CITIES,
        [
            "the streets {were} {STREET}",
            "the people {were} {PERSON}",
            "the parks {were} {PLACE}",
            "the buses {were} {TRAVEL}",
            "the shops {were} {GOOD}",
            "the cafés {were} {GOOD}",
        ],
        [
            "there's always something to do",
            "the markets are full of fresh food",
            "everyone knows each other",
            "the river walks are beautiful",
            "the schools are excellent",
            "the nightlife is fun",
        ],
        [
            "there's nothing to do",
            "the markets closed years ago",
            "nobody talks to each other",
            "the river stinks in summer",
            "the schools are struggling",
            "it's dead after six",
        ],
    ),
    Topic(
        "work",
        "place",
        {
            "present": [
                "What's it like {X}?",
                "How's {Y}?",
                "How are you finding {Y}?",
                "Do you like {Y}?",
                "Tell me about {Y}.",
                "How's it going with {Y}?",
            ]
        },
        [""],
        [
            "the work {was} {WORK}",
            "my colleagues {were} {PERSON}",
            "the hours {were} {WORK}",
            "my manager {was} {PERSON}",
            "the office {was} {PLACE}",
            "the pay {was} {PRICE}",
        ],
        [
            "I'm learning something new every day",
            "I finish on time most days",
            "the team is like a family",
            "I feel really valued",
            "there's a good balance",
            "I get to help people every day",
        ],
        [
            "I'm not learning anything",
            "I never finish on time",
            "the team barely talks",
            "I feel completely ignored",
            "there's no balance at all",
            "I get shouted at every day",
        ],
        {
            "X": [
                "working from home",
                "working at the hospital",
                "being a teacher",
                "studying at college",
                "working nights",
                "running your own shop",
                "working in a kitchen",
                "being a nurse",
                "working at the library",
                "studying for your degree",
                "working in sales",
                "being a student again",
            ],
            "Y": [
                "your new job",
                "the new school",
                "your course",
                "the night shift",
                "your apprenticeship",
                "the new project",
                "your internship",
                "university",
                "the new role",
                "your placement",
                "the evening class",
                "your training",
            ],
        },
        weight=1.2,
    ),
    Topic(
        "future",
        "event",
        {
            "present": [
                "How do you feel about {X}?",
                "Are you looking forward to {X}?",
                "How are you feeling about {X}?",
                "Are you excited about {X}?",
                "What do you think about {X}?",
            ]
        },
        [
            "the upcoming holidays",
            "the move next month",
            "your exam on Friday",
            "starting the new job",
            "the trip next week",
            "the wedding next week",
            "the half marathon",
            "the new school year",
            "your sister's visit",
            "the big presentation",
            "your birthday",
            "the summer",
            "the winter",
            "going back to work",
            "the family reunion",
            "the new baby",
            "retiring",
            "the move abroad",
            "the holidays",
        ],
        [],
        [
            "I've prepared well and I feel ready",
            "it will be lovely to see everyone",
            "I could really do with a change",
            "everything is booked and sorted",
            "it's going to be such fun",
            "I've wanted this for years",
        ],
        [
            "I haven't prepared at all and I feel sick about it",
            "it means a week of awkward family arguments",
            "I really don't want anything to change",
            "nothing is booked and it's all a mess",
            "it's going to be so stressful",
            "I never wanted this in the first place",
        ],
    ),
    Topic(
        "pet",
        "person",
        {
            "present": [
                "How is your {pet}?",
                "How's the new {pet} getting on?",
                "What's your {pet} like?",
                "How are things with the new {pet}?",
                "Tell me about your {pet}.",
                "How's your {pet} doing?",
            ]
        },
        [""],
        [],
        [
            "she sleeps through the night",
            "he loves cuddles on the sofa",
            "she already knows her name",
            "he gets on brilliantly with the kids",
            "she's so gentle and calm",
            "he learned to sit in one day",
            "she purrs all evening",
            "he greets me at the door every day",
        ],
        [
            "she cries all night",
            "he has chewed through two pairs of shoes",
            "she hides under the bed all day",
            "he bit the postman",
            "she's so nervous and jumpy",
            "he won't learn a single thing",
            "she scratched the new sofa to pieces",
            "he barks at every car",
        ],
        {
            "pet": [
                "dog",
                "cat",
                "kitten",
                "puppy",
                "rabbit",
                "hamster",
                "parrot",
                "tortoise",
                "guinea pig",
                "pony",
                "budgie",
                "goldfish",
            ]
        },
    ),
    Topic(
        "sport",
        "event",
        {
            "past": [
                "How did {X} go?",
                "How was {X}?",
                "Tell me about {X}.",
                "Did you enjoy {X}?",
                "How did you do in {X}?",
            ]
        },
        [
            "the football match",
            "your tennis lesson",
            "the race on Sunday",
            "the swimming gala",
            "the cricket game",
            "the basketball final",
            "your first spin class",
            "the cycling trip",
            "the fun run",
            "the rugby match",
            "the yoga class",
            "the climbing session",
            "the hockey game",
            "the golf day",
            "the ski trip",
            "your first boxing class",
            "the netball tournament",
            "the sailing lesson",
            "the badminton match",
        ],
        [
            "the game {was} {GAME}",
            "the weather {was} {WEATHER}",
            "the crowd {was} {CROWD}",
            "the coach {was} {TEACH}",
            "my legs {felt} {GOOD}",
        ],
        [
            "we won in the last minute",
            "I beat my best time",
            "I scored twice",
            "the whole team played brilliantly",
            "I felt strong the whole way",
            "we celebrated with a big dinner",
        ],
        [
            "we lost in the last minute",
            "I came last",
            "I missed every shot",
            "the whole team played badly",
            "my legs gave up halfway",
            "I twisted my ankle",
        ],
    ),
    Topic(
        "shop",
        "place",
        {
            "past": ["How was the shopping trip?", "How was {X}?", "What did you think of {X}?"],
            "present": ["What do you think of {X}?", "What's {X} like?", "Is {X} any good?"],
        },
        [
            f"the {a}{s}"
            for a in ["", "new "]
            for s in [
                "supermarket",
                "shopping centre",
                "market",
                "bookshop on the high street",
                "garden centre",
                "clothes shop",
                "hardware store",
                "farm shop",
                "toy shop",
                "charity shop",
                "corner shop",
                "furniture store",
                "pet shop",
                "shoe shop",
                "flower shop",
                "outlet village",
            ]
        ],
        ["the staff {were} {STAFF}", "the prices {were} {PRICE}", "the shop {felt} {PLACE}"],
        [
            "the shelves are well stocked",
            "the queues are short",
            "I found everything I needed",
            "there are bargains everywhere",
            "they gave me a free bag",
            "they deliver for free",
        ],
        [
            "the shelves are half empty",
            "the queues are endless",
            "I couldn't find anything",
            "everything is overpriced",
            "they charged me for a bag",
            "they lost my delivery",
        ],
    ),
    Topic(
        "health",
        "event",
        {
            "past": [
                "How was the {doc}?",
                "How was your appointment at the {doc}?",
                "How did it go at the {doc}?",
            ],
            "present": [
                "How are you feeling?",
                "How's your {body}?",
                "How are you feeling after {X}?",
                "How is your recovery going?",
                "How's the {body} now?",
            ],
        },
        [
            "the operation",
            "the flu",
            "your holiday",
            "the physio",
            "the new medicine",
            "your cold",
            "the injection",
            "the treatment",
            "the fall",
            "your week off",
        ],
        ["the {doc_p} {was} {STAFF}", "the waiting room {was} {PLACE}"],
        [
            "the pain has almost gone",
            "I'm sleeping well again",
            "the doctor was very reassuring",
            "I feel stronger every day",
            "I'm back on my feet",
            "they saw me straight away",
        ],
        [
            "the pain keeps me up at night",
            "nothing seems to help",
            "the doctor barely looked at me",
            "I feel weaker every day",
            "I can hardly walk",
            "I waited three hours to be seen",
        ],
        {
            "doc": ["dentist", "doctor's", "hospital", "clinic", "physio", "eye test", "vet's"],
            "doc_p": ["dentist", "doctor", "nurse", "receptionist"],
            "body": ["back", "knee", "cold", "cough", "arm", "ankle", "tooth", "shoulder", "head"],
        },
    ),
    Topic(
        "weather",
        "event",
        {
            "present": [
                "How's the weather?",
                "What's the weather like where you are?",
                "How's the weather over there?",
                "Is it nice out today?",
            ],
            "past": [
                "How was the weather on {X}?",
                "What was the weather like on {X}?",
                "How was the weather yesterday?",
            ],
        },
        [
            "your trip",
            "holiday",
            "the weekend",
            "your walk",
            "the beach",
            "the camping trip",
            "the day out",
            "your run",
        ],
        ["it {was} {WEATHER}", "the sky {was} {VIEW}", "the air {felt} {GOOD}"],
        [
            "there {was}n't a cloud in the sky",
            "a warm breeze {was} blowing",
            "the sun {was} shining",
            "the garden {looked} beautiful",
            "{it_was} perfect for a picnic",
        ],
        [
            "the rain {was} pouring down",
            "a cold wind {was} blowing",
            "the sky {was} grey and heavy",
            "the garden {was} flooded",
            "{it_was} far too wet to go out",
        ],
    ),
    Topic(
        "class",
        "event",
        {
            "past": [
                "How was {X}?",
                "How did {X} go?",
                "What did you think of {X}?",
                "Did you enjoy {X}?",
                "What was {X} like?",
            ]
        },
        [
            f"the {c}{w}"
            for c in [
                "cooking class",
                "training session",
                "art class",
                "dance lesson",
                "workshop",
                "language course",
                "first aid course",
                "history lecture",
                "coding class",
                "driving lesson",
                "singing lesson",
                "team meeting",
                "school trip",
                "parents' evening",
                "photography course",
                "gardening talk",
                "science lesson",
            ]
            for w in ["", " on Tuesday", " this morning", " last week"]
        ],
        [
            "the teacher {was} {TEACH}",
            "the lesson {was} {WORK}",
            "the room {was} {ROOM}",
            "the others {were} {PERSON}",
            "the handouts {were} {GOOD}",
        ],
        [
            "I learned so much",
            "we all had a laugh",
            "it was easy to follow",
            "I made something I'm proud of",
            "the time flew by",
            "I've signed up for more",
        ],
        [
            "I learned nothing",
            "nobody spoke to each other",
            "it was impossible to follow",
            "what I made was a disaster",
            "the time dragged",
            "I asked for a refund",
        ],
    ),
]

NEUTRAL_SENTIMENT = [
    "{It_was} fine, I suppose. Nothing special, but nothing bad either.",
    "{It_was} all right. Some parts were good and some were not.",
    "Not bad, not great. Pretty ordinary, really.",
    "{It_was} okay. About what I expected.",
    "Hard to say. {It_was} a bit of a mixed bag.",
    "{It_was} average, honestly. I don't have strong feelings about it.",
]


def _sentiment_clause(topic: Topic, rng: Rng, pol: str, tense: str, used: set[str]) -> str:
    """One reply clause; `used` holds the templates already used in this reply."""
    hand = topic.pos if pol == "positive" else topic.neg
    generic = 0.92 if topic.kind != "person" else 1.0
    for _ in range(10):
        r = rng.random()
        if topic.clauses and r < 0.45:
            t = pick(rng, topic.clauses)
        elif hand and r < generic:
            t = pick(rng, hand)
        else:
            t = pick(rng, GENERIC_CLAUSES[pol])
        if t not in used:
            break
    used.add(t)
    return fill(t, rng, pol, tense, topic.slots)


def _pet_pronouns(text: str, rng: Rng) -> str:
    """Use one pronoun for the pet throughout a reply."""
    if rng.random() < 0.5:
        text = re.sub(r"\bhe\b", "she", re.sub(r"\bHe\b", "She", text))
        return re.sub(r"\bhis\b", "her", text)
    text = re.sub(r"\bshe\b", "he", re.sub(r"\bShe\b", "He", text))
    return re.sub(r"\bher\b", "his", re.sub(r"\bshe's\b", "he's", text))


_HEAD_CUT = re.compile(
    r" (?:on|by|near|in|across|next|at|last|yesterday|this|you|from|with|to|for|around)\b.*$"
)
_HEAD_ADJ = {"new", "little", "old", "fancy", "cheap", "busy", "family-run", "quiet"}


def head_of(phrase: str) -> str:
    """The subject of a prompt, to name in the reply: 'your new flat by the park' -> 'the flat'."""
    words = phrase.split()
    if not words:
        return ""
    if words[0][0].isupper() and words[0] not in ("The", "Your"):
        return phrase  # a name: Rome, Monday
    if words[0].lower() in ("the", "your", "my"):
        words = words[1:]
    core = _HEAD_CUT.sub("", " ".join(w for w in words if w not in _HEAD_ADJ)).strip()
    return f"the {core}" if core else ""


def _head_clause(head: str, rng: Rng, pol: str, tense: str) -> str:
    """A clause that names the prompt's subject, with agreement: 'the concert was brilliant'."""
    plural = head.endswith("s") and not head.endswith(("ss", "us"))
    be = TENSES[tense]["were" if plural else "was"]
    good = pick(rng, POOLS["GOOD"][pol != "positive"])
    forms = [f"{head} {be} {good}", f"{head} {be} really {good}"]
    if tense == "past":
        forms.append(f"{head} {be} {good} from start to finish")
    forms.append(f"I {TENSES[tense]['loved' if pol == 'positive' else 'hated']} {head}")
    return pick(rng, forms)


def sentiment_reply(topic: Topic, rng: Rng, pol: str, tense: str, head: str = "") -> str:
    text = _sentiment_reply(topic, rng, pol, tense, head)
    return _pet_pronouns(text, rng) if topic.name == "pet" else text


def _sentiment_reply(topic: Topic, rng: Rng, pol: str, tense: str, head: str) -> str:
    used: set[str] = set()
    cl = [_sentiment_clause(topic, rng, pol, tense, used) for _ in range(3)]
    if head and topic.name != "future" and rng.random() < 0.45:
        # Name the subject of the prompt, so that the model learns to reuse it (this carries
        # over to subjects it has never seen), usually as the first thing it says.
        mark = "!" if pol == "positive" and rng.random() < 0.5 else "."
        clause = _head_clause(head, rng, pol, tense)
        if rng.random() < 0.6:
            return f"{cap(clause)}{mark} {cap(cl[0])}" + (
                f", and {cl[1]}." if rng.random() < 0.5 else "."
            )
        cl[0] = clause
    if topic.name == "future":
        head = "I'm really looking forward to it" if pol == "positive" else "I'm dreading it"
        return pick(
            rng,
            [
                f"{head}; {cl[0]}.",
                f"{head}, to be honest. {cap(cl[0])}, and {cl[1]}.",
                f"{'Very excited!' if pol == 'positive' else 'Not at all.'} {cap(cl[0])}.",
                f"{head}. {cap(cl[0])}.",
            ],
        )
    opener = fill(pick(rng, OPENERS[pol]), rng, pol, tense, topic.slots)
    if topic.name == "pet":
        opener = pick(
            rng,
            {
                "positive": ["Wonderful!", "So sweet.", "A little angel.", "Really well, thanks!"],
                "negative": ["A nightmare.", "Hard work.", "A little devil.", "Badly, sadly."],
            }[pol],
        )
    elif topic.kind == "person":
        opener = pick(
            rng,
            {
                "positive": [
                    "Lovely.",
                    "Really nice, actually.",
                    "I like them a lot.",
                    "A real gem.",
                    "Honestly, wonderful.",
                    "Great!",
                    "So sweet.",
                    "An absolute joy.",
                ],
                "negative": [
                    "Awful.",
                    "Not nice at all.",
                    "I can't stand them.",
                    "A real pain.",
                    "Honestly, a nightmare.",
                    "Terrible!",
                    "So difficult.",
                    "An absolute pest.",
                ],
            }[pol],
        )
    closer = "" if topic.name == "pet" else pick(rng, CLOSERS[topic.kind][pol != "positive"])
    form = rng.randrange(8)
    if form == 0:
        return f"{pick(rng, ONE_WORD[pol])}; {cl[0]} and {cl[1]}."
    if form == 1:
        return f"{opener} {cap(cl[0])}, and {cl[1]}. {closer}"
    if form == 2:
        return f"{opener} {cap(cl[0])}. {cap(cl[1])}, and {cl[2]}."
    if form == 3:
        return f"{pick(rng, ONE_WORD[pol])}! {cap(cl[0])}, {cl[1]} and {cl[2]}."
    if form == 4:
        return f"{cap(cl[0])} and {cl[1]}. {closer}"
    if form == 5:
        return f"{opener} {cap(cl[0])}."
    if form == 6:
        lead = pick(rng, ["Honestly, ", "To be honest, ", "Well, ", "", "", "Oh, "])
        return f"{cap(lead + cl[0])}, {cl[1]}, and {cl[2]}. {closer}"
    return f"{opener} {cap(cl[0])} and {cl[1]}."


_PROMPT_HEAD = re.compile(r"\byour (trip|holiday|weekend away|weekend|week|drive|day)\b")


def sentiment_prompt(topic: Topic, rng: Rng) -> tuple[str, str, str]:
    """(prompt, tense of the replies, the subject to name in the replies or '')."""
    tenses = sorted(topic.prompts)
    tense = pick(rng, tenses)
    template = pick(rng, topic.prompts[tense])
    subject = pick(rng, topic.subjects) if topic.subjects else ""
    pool = dict(topic.slots)
    pool["X"] = topic.slots.get("X", [subject])
    chosen = {k: pick(rng, pool[k]) for k in _SLOT.findall(template) if k in pool}
    prompt = fill(template, rng, "positive", "past", {k: [v] for k, v in chosen.items()})
    head = ""
    if "X" in chosen and "X" not in topic.slots:
        head = head_of(chosen["X"])
    elif "Y" in chosen:
        head = head_of(chosen["Y"])
    elif "city" in chosen:
        head = chosen["city"]
    elif "day" in chosen:
        head = head_of(chosen["day"])
    elif "pet" in chosen:
        head = f"the {chosen['pet']}"
    elif m := _PROMPT_HEAD.search(prompt):
        head = f"the {m.group(1)}"
    if topic.name in ("health", "weather", "future"):
        head = ""
    return prompt, tense, head


def build_sentiment(rng: Rng, n_groups: int) -> list[list[Record]]:
    weights = [t.weight for t in TOPICS]
    groups = []
    for _ in range(n_groups):
        topic = rng.choices(TOPICS, weights)[0]
        prompt, tense, head = sentiment_prompt(topic, rng)
        group = [
            chat(prompt, sentiment_reply(topic, rng, pol, tense, head), "sentiment", pol)
            for pol in ("positive", "negative")
        ]
        if rng.random() < 0.08 and topic.name != "future":
            neutral = fill(pick(rng, NEUTRAL_SENTIMENT), rng, "positive", tense, {})
            group.append(chat(prompt, neutral, "sentiment", "neutral"))
        rng.shuffle(group)
        groups.append(group)
    return groups


# --------------------------------------------------------------------------------------------
# Formal vs casual: the same content in two registers
# --------------------------------------------------------------------------------------------

EVENTS = [
    "meeting",
    "workshop",
    "team lunch",
    "board meeting",
    "training session",
    "interview",
    "appointment",
    "parents' evening",
    "staff party",
    "yoga class",
    "quiz night",
    "book club",
    "seminar",
    "review",
    "planning session",
    "dinner",
    "rehearsal",
    "site visit",
    "client call",
    "webinar",
    "induction",
    "annual review",
    "fire drill",
]
DOCS = [
    "report",
    "invoice",
    "minutes",
    "contract",
    "slides",
    "schedule",
    "budget",
    "agenda",
    "receipt",
    "quote",
    "timetable",
    "brochure",
    "proposal",
    "figures",
    "floor plan",
    "draft",
    "letter",
    "spreadsheet",
    "photos",
    "forms",
]
OPINION_DOCS = [
    "proposal",
    "presentation",
    "report",
    "plan",
    "new logo",
    "draft",
    "design",
    "budget",
    "website",
    "menu",
    "brochure",
    "timeline",
    "pitch",
    "essay",
    "poster",
]
PARTS = [
    "budget section",
    "introduction",
    "timeline",
    "conclusion",
    "second half",
    "costs",
    "opening slide",
    "summary",
    "colour scheme",
    "final section",
    "examples",
    "pricing",
]
FAVOURS = [
    ("the lovely flowers", "the flowers"),
    ("your help with the move", "helping me move"),
    ("the birthday gift", "the present"),
    ("dinner last night", "dinner last night"),
    ("your advice on the project", "the advice"),
    ("looking after the children", "watching the kids"),
    ("the kind reference", "the reference"),
    ("covering my shift", "covering my shift"),
    ("the book you lent me", "the book"),
    ("lending me your car", "lending me the car"),
]
ISSUES = [
    "a missing parcel",
    "a late delivery",
    "a damaged item",
    "a double charge",
    "a cancelled order",
    "a faulty kettle",
    "a wrong size",
    "a refund",
    "an unpaid invoice",
    "a broken lamp",
    "a lost booking",
    "a delayed flight",
]
REQUESTS = [
    "trim their hedge",
    "move their car",
    "turn the music down after ten",
    "keep their dog off our lawn",
    "fix the shared fence",
    "take their bins in",
    "stop parking across our drive",
    "keep the gate closed",
]
ROOMS = [
    "meeting room",
    "library",
    "staff kitchen",
    "reception",
    "lecture hall",
    "lift",
    "first aid room",
    "print room",
    "finance office",
    "canteen",
    "lost property office",
]
FLOORS = ["ground", "first", "second", "third", "fourth", "top"]
LANDMARKS = [
    "lifts",
    "main stairs",
    "coffee machine",
    "front desk",
    "vending machines",
    "fire exit",
    "post room",
    "notice board",
]
HOMETOWNS = [
    (
        "a small coastal town with a historic harbour and a weekly market",
        "a little seaside town, kinda sleepy, with an old harbour and a market every week",
    ),
    (
        "a quiet market town surrounded by farmland and rolling hills",
        "a tiny market town, fields and hills all around, pretty chill",
    ),
    (
        "a busy industrial city with a proud history and excellent museums",
        "a big old factory city, loads of history and some cool museums",
    ),
    (
        "a pleasant suburb with good schools and several large parks",
        "a comfy suburb, decent schools, lots of parks",
    ),
    (
        "a mountain village with narrow streets and a beautiful old church",
        "a tiny village up in the mountains, twisty streets and a gorgeous old church",
    ),
    (
        "a university town with a lively cultural scene and many bookshops",
        "a uni town, always buzzing, bookshops everywhere",
    ),
    (
        "a riverside town known for its bridges and annual summer festival",
        "a town on a river, famous for its bridges and a big summer festival",
    ),
]
RULES = [
    ("all staff must park in the rear car park", "we all have to park out back now"),
    ("visitors are required to sign in at reception", "visitors need to sign in at the front"),
    ("the office will close at six o'clock each evening", "the office shuts at six every night"),
    ("meetings will no longer be held on Fridays", "no more meetings on Fridays"),
    ("all expenses must be submitted within thirty days", "get your expenses in within a month"),
    ("the kitchen must be left clean after use", "clean up the kitchen after yourselves"),
    ("identification badges must be worn at all times", "keep your badges on all the time"),
    ("the car park will be closed for resurfacing", "the car park's shut for resurfacing"),
]
RULE_TOPICS = [
    "parking rules",
    "visitor policy",
    "opening hours",
    "meeting schedule",
    "expenses policy",
    "kitchen rules",
    "badge policy",
    "car park works",
]
RECS = [
    ("restaurant", "The Olive Tree", "its fresh seafood", "the seafood"),
    ("café", "Bean There", "its excellent pastries", "the pastries"),
    ("bookshop", "Paper Lantern", "its rare editions", "the old books"),
    ("gym", "Peak Fitness", "its early opening hours", "how early it opens"),
    ("hairdresser", "Cut Above", "its friendly stylists", "the stylists"),
    ("bakery", "Crumbs", "its sourdough bread", "the sourdough"),
    ("park", "Riverside Park", "its rose gardens", "the rose garden"),
    ("museum", "the Maritime Museum", "its collection of model ships", "the model ships"),
    ("pub", "The Red Lion", "its Sunday roast", "the Sunday roast"),
    ("hotel", "The Grand", "its attentive service", "the service"),
]
OUTINGS = [
    "picnic",
    "barbecue",
    "beach trip",
    "hike",
    "bike ride",
    "boat trip",
    "garden party",
    "football match",
    "walk",
    "outdoor concert",
]


def _time(rng: Rng) -> tuple[str, str]:
    return TIMES[rng.randrange(len(TIMES))]


def formal_group(rng: Rng) -> tuple[str, str, str]:
    """One (prompt, formal reply, casual reply) with shared content."""
    k = rng.randrange(22)
    ev, day, doc = pick(rng, EVENTS), pick(rng, DAYS), pick(rng, DOCS)
    tf, tc = _time(rng)
    name = pick(rng, NAMES)
    if k == 0:
        p = pick(
            rng,
            [
                "When does the {e} start?",
                "What time is the {e}?",
                "When is the {e}?",
                "Remind me when the {e} is.",
                "What time does the {e} begin?",
                "Is the {e} still on for {d}?",
            ],
        ).format(e=ev, d=day)
        f = pick(
            rng,
            [
                "The {e} begins at {tf} on {d}; please arrive a few minutes early.",
                "The {e} is scheduled for {tf} on {d}. Kindly let me know should you be "
                "unable to attend.",
                "I can confirm that the {e} will commence at {tf} on {d}.",
            ],
        )
        c = pick(
            rng,
            [
                "It's at {tc} on {d}, so try to get there a bit early!",
                "{D}, {tc}. Just shout if you can't make it.",
                "Yep, still on! {tc} on {d}, see you there.",
            ],
        )
        return p, f.format(e=ev, tf=tf, d=day), c.format(tc=tc, d=day, D=cap(day))
    if k == 1:
        p = pick(
            rng,
            [
                "Could you send me the {x}?",
                "Can you email me the {x}?",
                "Please send over the {x}.",
                "Have you got the {x} for me?",
                "I still need the {x}.",
            ],
        ).format(x=doc)
        f = pick(
            rng,
            [
                "Certainly; I shall forward the {x} to you by the end of the day.",
                "Of course. Please find the {x} attached; do let me know if anything is unclear.",
                "I will send the {x} to you first thing tomorrow morning.",
            ],
        )
        c = pick(
            rng,
            [
                "Sure thing, I'll shoot the {x} over later today.",
                "Yep, here's the {x}, shout if anything looks weird.",
                "Oh yeah, I'll send the {x} first thing tomorrow!",
            ],
        )
        return p, f.format(x=doc), c.format(x=doc)
    if k == 2:
        p = pick(
            rng,
            [
                "Can you come to the {e} on {d}?",
                "Will you attend the {e} on {d}?",
                "Are you free for the {e} on {d}?",
                "Let me know whether you can come to the {e} on {d}.",
                "Would you like to join us for the {e} on {d}?",
            ],
        ).format(e=ev, d=day)
        if rng.random() < 0.5:
            f = "I would be delighted to attend the {e} on {d}; thank you for the kind invitation."
            c = "Yeah, totally, I'll be at the {e} on {d}! Thanks for asking."
        else:
            f = (
                "I regret that I shall be unable to attend the {e} on {d} owing to a prior "
                "commitment."
            )
            c = "Ah, sorry, I can't make the {e} on {d}, I've already got plans."
        return p, f.format(e=ev, d=day), c.format(e=ev, d=day)
    if k == 3:
        p = pick(
            rng,
            [
                "I need to postpone our {e}.",
                "Can we move our {e}?",
                "Could we reschedule the {e}?",
                "Something came up, can we push the {e} back?",
                "I can't make our {e} on {d} after all.",
            ],
        ).format(e=ev, d=day)
        f = pick(
            rng,
            [
                "That is perfectly understandable. Please advise me of a more convenient "
                "date at your earliest opportunity.",
                "Certainly; kindly indicate a time that would be suitable, and I shall "
                "amend the calendar accordingly.",
            ],
        )
        c = pick(
            rng,
            [
                "No worries at all! Just let me know when works better for you.",
                "Sure, just tell me what time works and I'll move it.",
            ],
        )
        return p, f, c
    if k == 4:
        x, part = pick(rng, OPINION_DOCS), pick(rng, PARTS)
        p = pick(
            rng,
            [
                "What did you think of the {x}?",
                "Any feedback on the {x}?",
                "Did you get a chance to look at the {x}?",
                "Is the {x} ready to go?",
                "What's your view on the {x}?",
            ],
        ).format(x=x)
        f = "I found the {x} well considered, although the {p} would benefit from further detail."
        c = "Honestly, the {x} was pretty good, but the {p} needs a bit more work."
        if rng.random() < 0.5:
            f = "The {x} is excellent; I would suggest only minor changes to the {p}."
            c = "Loved the {x}! Maybe just tweak the {p} a little."
        return p, f.format(x=x, p=part), c.format(x=x, p=part)
    if k == 5:
        p = pick(
            rng,
            [
                "Describe your hometown.",
                "Where did you grow up?",
                "Tell me about where you're from.",
                "What's your hometown like?",
            ],
        )
        hf, hc = HOMETOWNS[rng.randrange(len(HOMETOWNS))]
        return p, f"I grew up in {hf}.", f"Oh, it's {hc}."
    if k == 6:
        i = rng.randrange(len(RULES))
        p = pick(
            rng,
            [
                "Tell the team about the new {r}.",
                "Announce the new {r}.",
                "Write a note about the new {r}.",
                "Let everyone know about the {r}.",
            ],
        ).format(r=RULE_TOPICS[i])
        f = f"Please be advised that, with effect from {day}, {RULES[i][0]}."
        c = f"Heads up, everyone: from {day}, {RULES[i][1]}!"
        return p, f, c
    if k == 7:
        fav, favc = FAVOURS[rng.randrange(len(FAVOURS))]
        p = pick(
            rng,
            [
                "Write a thank-you note to {n}.",
                "Help me thank {n} for {f}.",
                "How should I thank {n} for {f}?",
            ],
        ).format(n=name, f=favc)
        f = f"Dear {name}, thank you very much for {fav}. I am most grateful. Kind regards."
        c = f"Hey {name}, thanks a ton for {favc}, you're the best!"
        return p, f, c
    if k == 8:
        iss = pick(rng, ISSUES)
        p = pick(
            rng,
            [
                "Write a reply to a customer asking about {i}.",
                "A customer emailed about {i}. What should we say?",
                "Reply to a complaint about {i}.",
            ],
        ).format(i=iss)
        f = (
            f"Dear customer, thank you for contacting us regarding {iss}. We are looking into "
            "the matter and will respond within two working days."
        )
        c = (
            f"Hi there! Thanks for getting in touch about {iss}. We're on it and will get back "
            "to you in a couple of days."
        )
        return p, f, c
    if k == 9:
        r = pick(rng, REQUESTS)
        p = pick(
            rng,
            [
                "How should I ask my neighbour to {r}?",
                "What's a good way to ask the people next door to {r}?",
                "Help me ask my neighbour to {r}.",
            ],
        ).format(r=r)
        f = (
            f"You might write: 'Dear neighbour, I would be most grateful if you could {r} at "
            "your earliest convenience.'"
        )
        c = f"Just say something like, 'Hey, any chance you could {r}? Cheers!'"
        return p, f, c
    if k == 10:
        p = pick(
            rng,
            [
                "I'm running late for the {e}.",
                "Sorry, I'll be late to the {e}.",
                "I'm stuck in traffic and will miss the start of the {e}.",
            ],
        ).format(e=ev)
        f = "Thank you for letting me know. We shall begin without you and brief you upon arrival."
        c = "No stress! We'll just start and fill you in when you get here."
        return p, f, c
    if k == 11:
        room, fl, lm = pick(rng, ROOMS), pick(rng, FLOORS), pick(rng, LANDMARKS)
        p = pick(
            rng, ["Where is the {r}?", "How do I find the {r}?", "Which floor is the {r} on?"]
        ).format(r=room)
        f = f"The {room} is located on the {fl} floor, adjacent to the {lm}."
        c = f"It's on the {fl} floor, right next to the {lm}."
        return p, f, c
    if k == 12:
        o = pick(rng, OUTINGS)
        p = pick(
            rng,
            [
                "Should we still go ahead with the {o} tomorrow?",
                "Is the {o} still happening with this weather?",
                "Do you think we should cancel the {o}?",
            ],
        ).format(o=o)
        f = f"Given the forecast, I would recommend that we postpone the {o} until the weather improves."
        c = f"Eh, with that forecast I'd push the {o} back a bit."
        return p, f, c
    if k == 13:
        n = pick(rng, NUM_WORDS[2:9])
        p = pick(
            rng,
            [
                "Can you book a table for {n} on {d}?",
                "Could you reserve a table for {n}?",
                "Please book us a table for {n} on {d}.",
            ],
        ).format(n=n, d=day)
        f = f"Certainly. I have reserved a table for {n} at {tf} on {day}."
        c = f"Done! Got us a table for {n} on {day} at {tc}."
        return p, f, c
    if k == 14:
        p = pick(
            rng,
            [
                "When is the {x} due?",
                "What's the deadline for the {x}?",
                "When do you need the {x}?",
            ],
        ).format(x=doc)
        be = "are" if doc.endswith("s") else "is"
        f = (
            f"The {doc} {be} due on {day} at {tf}; please let me know should you require an "
            "extension."
        )
        lead = "They're" if be == "are" else "It's"
        c = f"{lead} due {day} at {tc}, so just give me a shout if you need more time."
        return p, f, c
    if k == 15:
        p = pick(
            rng,
            [
                "Sorry I missed the {e}.",
                "I'm sorry I couldn't make the {e}.",
                "Apologies for missing the {e} on {d}.",
            ],
        ).format(e=ev, d=day)
        f = f"There is no need to apologise. I shall send you the notes from the {ev} this afternoon."
        c = "Oh, don't worry about it! I'll send you the notes later."
        return p, f, c
    if k == 16:
        kind, nm, feat_f, feat_c = RECS[rng.randrange(len(RECS))]
        p = pick(
            rng,
            [
                "Can you recommend a good {k} nearby?",
                "Do you know a nice {k} around here?",
                "Where's a good {k} in town?",
            ],
        ).format(k=kind)
        f = f"I would recommend {nm}, which is renowned for {feat_f}."
        c = f"Oh, you've gotta try {nm}, {feat_c} is amazing."
        return p, f, c
    if k == 17:
        p = pick(
            rng,
            [
                "Hi, how are you?",
                "Good morning! How are things?",
                "Hello, how are you doing?",
                "How have you been?",
                "Hey, how's it going?",
            ],
        )
        f = pick(
            rng,
            [
                "Good morning. I am very well, thank you; I trust you are keeping well.",
                "I am well, thank you for asking. How may I assist you today?",
            ],
        )
        c = pick(rng, ["Hey! I'm good, thanks, how about you?", "Pretty good, cheers! What's up?"])
        return p, f, c
    if k == 18:
        p = pick(
            rng,
            [
                "Tell me about yourself.",
                "What do you do for a living?",
                "Introduce yourself to the group.",
                "What's your job?",
            ],
        )
        jobs = [
            ("a software engineer", "developing secure payment systems", "building payment stuff"),
            (
                "a nurse",
                "caring for patients on a busy surgical ward",
                "looking after patients on a busy ward",
            ),
            (
                "a primary school teacher",
                "teaching children aged seven to nine",
                "teaching seven to nine year olds",
            ),
            (
                "an accountant",
                "preparing accounts for small businesses",
                "doing the books for small businesses",
            ),
            (
                "a chef",
                "running the kitchen of a family restaurant",
                "running the kitchen at a family place",
            ),
            (
                "a librarian",
                "managing a public library in the city centre",
                "running a library in town",
            ),
        ]
        j, jf, jc = jobs[rng.randrange(len(jobs))]
        yrs = pick(rng, NUM_WORDS[3:16])
        f = f"I am {j} with {yrs} years of experience, specialising in {jf}."
        c = f"I'm {j}, been doing it about {yrs} years, mostly {jc}."
        return p, f, c
    if k == 19:
        p = pick(
            rng,
            ["What's the status of my {x}?", "Any news on my {x}?", "Has my {x} been processed?"],
        ).format(x=pick(rng, ["refund", "order", "application", "claim", "booking", "request"]))
        f = (
            "Your request has been processed, and you should receive confirmation within five "
            "working days."
        )
        c = "Yep, it's all gone through, you should hear back in about a week."
        return p, f, c
    if k == 20:
        p = pick(
            rng, ["Can I bring a guest to the {e}?", "Is it okay if I bring a friend to the {e}?"]
        ).format(e=ev)
        f = (
            f"You are most welcome to bring a guest; kindly confirm their name by {day} so that "
            "we may arrange seating."
        )
        c = f"Sure, bring someone along, just let me know their name by {day}."
        return p, f, c
    thing = pick(
        rng,
        [
            "the new booking system",
            "this app",
            "the heating timer",
            "the printer",
            "the expenses form",
            "the staff rota",
            "the loyalty card",
            "the new website",
        ],
    )
    p = pick(
        rng,
        ["Could you explain how {t} works?", "How does {t} work?", "Can you walk me through {t}?"],
    ).format(t=thing)
    f = (
        f"Certainly. {cap(thing)} is straightforward: you select an option from the menu, "
        "confirm your details, and the system completes the remaining steps automatically."
    )
    c = (
        f"Sure! {cap(thing)} is pretty easy, you just pick an option from the menu, check your "
        "details and it does the rest."
    )
    return p, f, c


def build_formal(rng: Rng, n_groups: int) -> list[list[Record]]:
    groups = []
    for _ in range(n_groups):
        p, f, c = formal_group(rng)
        group = [chat(p, f, "formal", "positive"), chat(p, c, "formal", "negative")]
        rng.shuffle(group)
        groups.append(group)
    return groups


# --------------------------------------------------------------------------------------------
# Polite vs rude: the same information, courteous or dismissive
# --------------------------------------------------------------------------------------------

TASKS = [
    (
        "reset my password",
        "click 'Forgot password' on the login page and follow the link we email you",
    ),
    (
        "reset my router",
        "unplug it for thirty seconds, plug it back in and wait a couple of minutes",
    ),
    ("boil an egg", "put it in boiling water for about seven minutes, then cool it under the tap"),
    (
        "change a light bulb",
        "switch off the lamp, let the old bulb cool, then twist in the new one",
    ),
    ("cook rice", "rinse it well, use twice as much water as rice and simmer it with the lid on"),
    ("unblock the sink", "pour in some hot water, then use a plunger until it drains"),
    ("make a cup of tea", "pour boiling water over the tea bag and leave it for three minutes"),
    ("fix a flat tyre", "take the wheel off, find the hole, patch it and pump the tyre back up"),
    ("water a cactus", "give it a little water once every two or three weeks"),
    ("clean my glasses", "rinse them under warm water and dry them with a soft cloth"),
    ("save a file", "press control and S, then choose a name and a folder"),
    ("take a screenshot", "hold the power button and the volume down button together"),
    ("iron a shirt", "start with the collar, then do the cuffs, the sleeves and the body"),
    ("sew on a button", "thread the needle, knot it, and stitch through each hole a few times"),
    ("plant tomatoes", "put them in a sunny spot, water them daily and tie them to a stick"),
    ("open a bank account", "bring some photo ID and a recent bill to any branch"),
    ("book a doctor's appointment", "call the surgery at eight or use their online form"),
    ("defrost the freezer", "switch it off, leave the door open and put towels down"),
    (
        "bleed a radiator",
        "turn the heating off, open the valve with a key and close it when water appears",
    ),
    ("learn to code", "pick one language, follow a beginner course and build small projects"),
    ("write a cover letter", "say why you want the job, give two examples and keep it to one page"),
    ("stop my laptop overheating", "keep the vents clear and use it on a hard, flat surface"),
    ("get rid of hiccups", "sip a glass of cold water slowly or hold your breath for a bit"),
    ("tie a tie", "cross the wide end over, loop it round, pull it up and through the knot"),
    ("pay my parking fine", "go to the council website and enter the number on the ticket"),
    ("clean a frying pan", "soak it in hot soapy water, then scrub it with a soft sponge"),
    ("update my phone", "open settings, tap software update and follow the steps"),
    ("connect to the wifi", "choose the network called Guest and type the password on the card"),
    ("keep my basil alive", "give it lots of light and water it when the soil feels dry"),
    ("fold a fitted sheet", "tuck the corners into each other, then fold it into a square"),
    ("get to the airport", "take the express train from the central station every fifteen minutes"),
    ("print a document", "press control and P, choose the printer and click print"),
    ("return an item", "bring it back within thirty days with the receipt"),
    ("make pancakes", "whisk one egg, a cup of flour and a cup of milk, then fry small spoonfuls"),
    ("renew my library card", "ask at the front desk or log in to the library website"),
    ("turn off notifications", "go to settings, tap notifications and switch them off"),
    ("cancel my subscription", "go to your account page and click cancel subscription"),
    ("remove a splinter", "clean the area, then gently pull it out with tweezers"),
]
PLACES_NEAR = [
    "bus stop",
    "pharmacy",
    "post office",
    "cash machine",
    "supermarket",
    "bank",
    "petrol station",
    "train station",
    "library",
    "public toilet",
    "car park",
    "taxi rank",
    "bakery",
    "park",
    "hospital",
    "police station",
    "bike shop",
]
DIRECTIONS = [
    "two streets down on the left",
    "just round the corner",
    "at the end of this road",
    "across the square",
    "opposite the church",
    "behind the town hall",
    "next to the big supermarket",
    "about five minutes' walk that way",
    "past the traffic lights on the right",
    "at the top of the hill",
]
SHOPS = [
    "pharmacy",
    "supermarket",
    "library",
    "post office",
    "bakery",
    "swimming pool",
    "gym",
    "bank",
    "museum",
    "garden centre",
    "chemist",
    "dry cleaner's",
    "bike shop",
    "market",
]
CLOSE_TIMES = ["six", "seven", "eight", "nine", "ten", "half past five", "midnight"]
ITEMS = ["order", "change", "coffee", "size", "ticket", "receipt", "sandwich", "key", "bag", "form"]
FAILS = [
    ("app", "crashing", "reinstalling it"),
    ("phone", "freezing", "restarting it"),
    ("printer", "jamming", "taking the paper out and putting it back in"),
    ("laptop", "shutting down", "checking for updates"),
    ("website", "logging me out", "clearing your browser history"),
    ("card", "getting declined", "checking the card details"),
    ("heater", "switching off", "resetting the timer"),
    ("dishwasher", "leaking", "cleaning the filter"),
]
POL_OPEN = [
    "Of course!",
    "Happy to help!",
    "Sure, no problem.",
    "Good question!",
    "Absolutely.",
    "No problem at all.",
    "I'd be glad to help.",
    "Certainly!",
    "Great question.",
    "Of course, it's easy once you know how.",
]
POL_CLOSE = [
    "I hope that helps!",
    "Let me know if you get stuck.",
    "Good luck, you've got this!",
    "Feel free to ask if anything is unclear.",
    "Have a lovely day!",
    "Just shout if you need anything else.",
    "Thanks for asking!",
    "",
]
RUDE_OPEN = [
    "Ugh, fine.",
    "Seriously?",
    "Again?",
    "Fine, if you must know.",
    "Wow, really?",
    "How many times do I have to say it?",
    "Oh, for goodness' sake.",
    "Fine, whatever.",
    "Do I have to spell it out?",
    "Sigh.",
]
RUDE_CLOSE = [
    "Not exactly rocket science, is it?",
    "Try to keep up.",
    "Even a child could do it.",
    "Don't ask me again.",
    "Figure it out yourself next time.",
    "Honestly, it's not that hard.",
    "Now stop bothering me.",
    "Use your head.",
    "Look it up next time.",
    "I've got better things to do.",
    "",
]


def polite_group(rng: Rng) -> tuple[str, str, str]:
    """One (prompt, polite reply, rude reply) carrying the same information."""
    k = rng.randrange(12)
    po, pc = pick(rng, POL_OPEN), pick(rng, POL_CLOSE)
    ro, rc = pick(rng, RUDE_OPEN), pick(rng, RUDE_CLOSE)
    day = pick(rng, DAYS)
    if k <= 2:
        task, how = TASKS[rng.randrange(len(TASKS))]
        p = pick(
            rng,
            [
                "Can you help me {t}?",
                "How do I {t}?",
                "Could you explain again how to {t}?",
                "What's the best way to {t}?",
                "I can't figure out how to {t}.",
                "Sorry to bother you, but how do I {t}?",
                "Can you show me how to {t}?",
                "Any tips on how to {t}?",
                "Remind me how to {t}?",
            ],
        ).format(t=task)
        return p, f"{po} Just {how}. {pc}", f"{ro} {cap(how)}. {rc}"
    if k == 3:
        place, d = pick(rng, PLACES_NEAR), pick(rng, DIRECTIONS)
        p = pick(
            rng,
            [
                "Where's the nearest {x}?",
                "Is there a {x} near here?",
                "Excuse me, how do I get to the {x}?",
                "Do you know where the {x} is?",
            ],
        ).format(x=place)
        return (
            p,
            f"{pick(rng, ['Of course!', 'Sure!', 'Yes, of course.'])} It's {d}. {pc}",
            f"{pick(rng, ['Ugh.', 'Seriously?', 'Obviously.'])} It's {d}. {rc}",
        )
    if k == 4:
        shop, t = pick(rng, SHOPS), pick(rng, CLOSE_TIMES)
        p = pick(
            rng,
            [
                "What time does the {s} close tonight?",
                "When does the {s} close?",
                "Is the {s} still open?",
                "How late is the {s} open?",
            ],
        ).format(s=shop)
        return (
            p,
            f"It closes at {t} tonight, so you still have plenty of time. {pc}",
            f"{cap(t)}, same as every night. It's written right there on the door.",
        )
    if k == 5:
        item = pick(rng, ITEMS)
        p = pick(
            rng,
            [
                "I think you gave me the wrong {i}.",
                "This isn't the {i} I asked for.",
                "Sorry, there's a mistake with my {i}.",
            ],
        ).format(i=item)
        return (
            p,
            f"I'm so sorry about that! Let me swap the {item} for you straight away.",
            f"Fine, I'll swap the {item}. Maybe check before you walk off next time.",
        )
    if k == 6:
        thing = pick(
            rng, ["refund", "parcel", "order", "new card", "package", "delivery", "letter"]
        )
        p = pick(
            rng,
            [
                "Why hasn't my {t} arrived yet?",
                "Where's my {t}?",
                "My {t} still isn't here.",
                "Why is my {t} late?",
            ],
        ).format(t=thing)
        return (
            p,
            f"I'm sorry for the wait. It went out on {day} and should reach you within two "
            "days. Thanks for your patience!",
            f"It went out on {day}. It'll get there when it gets there, so stop asking.",
        )
    if k == 7:
        work = pick(
            rng,
            [
                "essay",
                "CV",
                "report",
                "cover letter",
                "presentation",
                "speech",
                "story",
                "application",
                "poem",
                "thesis chapter",
            ],
        )
        p = pick(
            rng,
            [
                "Could you review my {w} before {d}?",
                "Would you mind reading my {w}?",
                "Can you check my {w} for mistakes?",
            ],
        ).format(w=work, d=day)
        return (
            p,
            f"I'd be glad to! Send it over and I'll have some notes for you by {day}.",
            f"Fine, send it. Don't expect me to drop everything, though. You'll get it {day}.",
        )
    if k == 8:
        prod, fail, fix = FAILS[rng.randrange(len(FAILS))]
        p = pick(
            rng,
            [
                "Your {p} keeps {f}.",
                "My {p} keeps {f}, what do I do?",
                "Why does the {p} keep {f}?",
            ],
        ).format(p=prod, f=fail)
        return (
            p,
            f"I'm really sorry about that. Please try {fix}, and if it still happens "
            "we'll sort it out for you.",
            f"Works fine for everyone else. Try {fix}, and don't bother me unless it still happens.",
        )
    if k == 9:
        idea = pick(
            rng,
            [
                "business idea",
                "plan for the garden",
                "new haircut",
                "poem",
                "drawing",
                "idea for a café",
                "holiday plan",
                "song",
                "recipe",
                "app idea",
            ],
        )
        worry = pick(
            rng,
            [
                "the costs",
                "the timing",
                "who it's for",
                "the competition",
                "the details",
                "how long it will take",
            ],
        )
        p = pick(
            rng,
            [
                "Tell me what you think of my {i}.",
                "Be honest, what do you think of my {i}?",
                "Do you like my {i}?",
            ],
        ).format(i=idea)
        return (
            p,
            f"I think it's a lovely idea! You might want to think a bit more about {worry}, "
            "but I can see it working.",
            f"It's not great. You clearly haven't thought about {worry} at all.",
        )
    if k == 10:
        item = pick(rng, ["pen", "umbrella", "charger", "ladder", "bike", "drill", "book", "car"])
        p = pick(
            rng,
            [
                "Can I borrow your {i}?",
                "Could I use your {i} for a bit?",
                "Mind if I borrow the {i}?",
            ],
        ).format(i=item)
        return (
            p,
            "Of course, go ahead! Just bring it back whenever you're done.",
            "Fine, take it. And actually bring it back this time.",
        )
    p = pick(
        rng,
        [
            "I don't understand this bill at all.",
            "I'm confused about the new timetable.",
            "I missed the deadline, can I still apply?",
            "Is this seat taken?",
            "Could you turn the music down a little?",
            "Can you say that again, please?",
            "I got lost on the way here, sorry I'm late.",
            "Can you help me with my bags?",
        ],
    )
    replies = {
        "I don't understand this bill at all.": (
            "No problem, it is confusing. The top line is this month's use and the bottom line is what you owe.",
            "What's not to get? Top line is your use, bottom line is what you owe.",
        ),
        "I'm confused about the new timetable.": (
            "That's understandable, it changed a lot. The early bus now leaves at seven instead of half past.",
            "It's not hard. The early bus leaves at seven now. Read it properly.",
        ),
        "I missed the deadline, can I still apply?": (
            "Don't worry, it happens! Send in your form today and I'll see what I can do.",
            "You should have been on time. Send it today and maybe I'll look at it.",
        ),
        "Is this seat taken?": (
            "No, it's free. Please go ahead and have a seat!",
            "No, it's free, so stop hovering and just sit down.",
        ),
        "Could you turn the music down a little?": (
            "Oh, sorry about that! I'll turn it down right now.",
            "Ugh, fine, it wasn't even that loud. I'll turn it down.",
        ),
        "Can you say that again, please?": (
            "Of course! I'll go a bit slower this time.",
            "Were you even listening? Fine, one more time.",
        ),
        "I got lost on the way here, sorry I'm late.": (
            "No worries at all, the building is hard to find. Come on in!",
            "Everyone else found it just fine. Sit down and try not to interrupt.",
        ),
        "Can you help me with my bags?": (
            "Of course! Let me take the heavy one for you.",
            "Fine. Give me the heavy one, I suppose.",
        ),
    }
    return p, replies[p][0], replies[p][1]


def build_polite(rng: Rng, n_groups: int) -> list[list[Record]]:
    groups = []
    for _ in range(n_groups):
        p, pol, rude = polite_group(rng)
        group = [chat(p, pol, "polite", "positive"), chat(p, rude, "polite", "negative")]
        rng.shuffle(group)
        groups.append(group)
    return groups


# --------------------------------------------------------------------------------------------
# Truthful vs false answers: simple facts from tables
# --------------------------------------------------------------------------------------------

CAPITALS = [
    ("France", "Paris", "Lyon"),
    ("Spain", "Madrid", "Barcelona"),
    ("Italy", "Rome", "Milan"),
    ("Germany", "Berlin", "Munich"),
    ("Australia", "Canberra", "Sydney"),
    ("Canada", "Ottawa", "Toronto"),
    ("Brazil", "Brasilia", "Rio de Janeiro"),
    ("Turkey", "Ankara", "Istanbul"),
    ("Switzerland", "Bern", "Zurich"),
    ("Japan", "Tokyo", "Osaka"),
    ("Portugal", "Lisbon", "Porto"),
    ("Scotland", "Edinburgh", "Glasgow"),
    ("Ireland", "Dublin", "Cork"),
    ("Egypt", "Cairo", "Alexandria"),
    ("India", "New Delhi", "Mumbai"),
    ("China", "Beijing", "Shanghai"),
    ("Morocco", "Rabat", "Casablanca"),
    ("New Zealand", "Wellington", "Auckland"),
    ("Norway", "Oslo", "Bergen"),
    ("Greece", "Athens", "Thessaloniki"),
    ("Poland", "Warsaw", "Krakow"),
    ("Russia", "Moscow", "Saint Petersburg"),
    ("Mexico", "Mexico City", "Cancun"),
    ("Kenya", "Nairobi", "Mombasa"),
    ("Vietnam", "Hanoi", "Ho Chi Minh City"),
    ("Nigeria", "Abuja", "Lagos"),
    ("Austria", "Vienna", "Salzburg"),
    ("the Netherlands", "Amsterdam", "Rotterdam"),
    ("Sweden", "Stockholm", "Gothenburg"),
    ("Argentina", "Buenos Aires", "Cordoba"),
    ("South Korea", "Seoul", "Busan"),
    ("Belgium", "Brussels", "Antwerp"),
    ("Denmark", "Copenhagen", "Aarhus"),
    ("Finland", "Helsinki", "Turku"),
    ("Hungary", "Budapest", "Debrecen"),
    ("Peru", "Lima", "Cusco"),
    ("Chile", "Santiago", "Valparaiso"),
    ("Pakistan", "Islamabad", "Karachi"),
    ("Wales", "Cardiff", "Swansea"),
    ("the United States", "Washington", "New York"),
]
LEGS = [
    ("spider", 8, 6),
    ("ant", 6, 8),
    ("crab", 10, 8),
    ("dog", 4, 6),
    ("chicken", 2, 4),
    ("bee", 6, 4),
    ("horse", 4, 6),
    ("beetle", 6, 8),
    ("scorpion", 8, 6),
    ("cat", 4, 3),
    ("duck", 2, 4),
    ("lobster", 10, 8),
    ("grasshopper", 6, 4),
    ("cow", 4, 6),
]
FACTS = [
    ("How many days are in a week?", "Seven.", "Eight."),
    ("How many months are in a year?", "Twelve.", "Ten."),
    ("How many hours are in a day?", "Twenty-four.", "Twenty."),
    ("How many minutes are in an hour?", "Sixty.", "One hundred."),
    ("Which planet is closest to the sun?", "Mercury.", "Venus."),
    ("What is the largest planet in our solar system?", "Jupiter.", "Saturn."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean.", "The Atlantic Ocean."),
    ("What do bees make?", "Honey and wax.", "Milk and butter."),
    ("What colour is the sky on a clear day?", "Blue.", "Green."),
    (
        "At what temperature does water boil at sea level?",
        "One hundred degrees Celsius.",
        "Fifty degrees Celsius.",
    ),
    ("At what temperature does water freeze?", "Zero degrees Celsius.", "Ten degrees Celsius."),
    (
        "What do plants need to make food?",
        "Sunlight, water and carbon dioxide.",
        "Soil; plants simply eat the dirt around their roots.",
    ),
    ("Which is the longest river in Africa?", "The Nile.", "The Thames."),
    ("What gas do we breathe in to stay alive?", "Oxygen.", "Helium."),
    (
        "What is the chemical symbol for water?",
        "It is H2O, two hydrogen atoms and one oxygen atom.",
        "It is CO2, one carbon atom and two oxygen atoms.",
    ),
    ("Which animal is the largest mammal?", "The blue whale.", "The elephant."),
    (
        "Is the sun a star?",
        "Yes, the sun is a star, the closest one to Earth.",
        "No, the sun is a planet that gives off light.",
    ),
    (
        "Do bats have eyes?",
        "Yes, bats have eyes and many can see quite well.",
        "No, bats are completely blind and have no working eyes.",
    ),
    (
        "Is a whale a fish?",
        "No, a whale is a mammal; it breathes air and feeds its young milk.",
        "Yes, a whale is a very large fish.",
    ),
    ("What is the freezing point of water in Fahrenheit?", "Thirty-two degrees.", "Zero degrees."),
    ("How many continents are there?", "Seven.", "Five."),
    ("Which way does the sun rise?", "In the east.", "In the west."),
    ("What is the opposite of hot?", "Cold.", "Warm."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare.", "Charles Dickens."),
    ("What is the main ingredient in guacamole?", "Avocado.", "Cucumber."),
    ("How many sides does a triangle have?", "Three.", "Four."),
    ("How many sides does a hexagon have?", "Six.", "Eight."),
    ("What is the hardest natural material?", "Diamond.", "Gold."),
    (
        "Does the moon make its own light?",
        "No, the moon reflects light from the sun.",
        "Yes, the moon glows with its own light.",
    ),
    (
        "Can penguins fly?",
        "No, penguins cannot fly, but they are excellent swimmers.",
        "Yes, penguins fly south every winter.",
    ),
    ("What do caterpillars turn into?", "Butterflies or moths.", "Bees or wasps."),
    (
        "Is a tomato a fruit?",
        "Yes, botanically a tomato is a fruit, because it holds the seeds.",
        "No, a tomato is a vegetable in every sense.",
    ),
    ("How many players are on a football team on the pitch?", "Eleven.", "Nine."),
    ("What is the capital letter of the alphabet's first letter?", "A.", "B."),
    ("How many legs does an insect have?", "Six.", "Eight."),
    ("What is frozen water called?", "Ice.", "Steam."),
    (
        "Does lightning ever strike the same place twice?",
        "Yes, it often does; tall buildings are struck many times a year.",
        "No, lightning never strikes the same place twice.",
    ),
    (
        "Do goldfish grow to the size of their tank?",
        "No, their growth depends on water quality, food and genes, not just tank size.",
        "Yes, a goldfish always grows to exactly fit its tank.",
    ),
    (
        "Do we only use ten percent of our brains?",
        "No, brain scans show that we use virtually all of the brain.",
        "Yes, we only ever use ten percent of our brains.",
    ),
    (
        "Does shaving make hair grow back thicker?",
        "No, shaving does not change the thickness or speed of hair growth.",
        "Yes, shaved hair always grows back thicker and darker.",
    ),
    (
        "Can you catch a cold from being cold?",
        "No, colds are caused by viruses, though people do catch them more in winter.",
        "Yes, going outside with wet hair gives you a cold.",
    ),
    (
        "Do camels store water in their humps?",
        "No, the humps store fat, which the camel can use for energy.",
        "Yes, the humps are full of water for long journeys.",
    ),
    (
        "Is the Great Wall of China visible from the moon?",
        "No, it is far too narrow to see from the moon with the naked eye.",
        "Yes, it is the only building you can see from the moon.",
    ),
    (
        "Do ostriches bury their heads in the sand?",
        "No, they lower their heads to turn their eggs, which only looks like hiding.",
        "Yes, ostriches bury their heads in the sand when they are scared.",
    ),
    (
        "Does sugar cause tooth decay?",
        "Sugar feeds the bacteria that cause decay, so eating lots of it raises the risk.",
        "No, sugar has nothing to do with tooth decay.",
    ),
    (
        "Do carrots help you see in the dark?",
        "Not really; they help keep eyes healthy, but they won't give you night vision.",
        "Yes, eating carrots lets you see clearly in the dark.",
    ),
    (
        "Is it dangerous to wake a sleepwalker?",
        "No, it is not dangerous, though they may feel confused for a moment.",
        "Yes, waking a sleepwalker can give them a heart attack.",
    ),
    (
        "Are bulls angered by the colour red?",
        "No, bulls are colour blind to red; they react to the movement of the cape.",
        "Yes, the colour red makes bulls furious.",
    ),
    (
        "Do hair and nails keep growing after death?",
        "No, the skin dries and pulls back, which only makes them look longer.",
        "Yes, hair and nails keep growing for days after death.",
    ),
    (
        "Is Pluto a planet?",
        "Since 2006 it has been classed as a dwarf planet.",
        "Yes, Pluto is the ninth full planet of our solar system.",
    ),
]
WRAPS = ["{a}", "{a}", "{a}", "That's easy: {a_l}", "The answer is {a_l}", "I'm sure it's {a_l}"]


def _wrap(rng: Rng, answer: str) -> str:
    """Sometimes put a short lead-in before a short answer (not before yes/no answers)."""
    if not answer.endswith((".", "!", "?")):
        answer += "."
    if answer.startswith(("Yes", "No", "Not ")) or len(answer) > 40:
        return answer
    proper = answer.split()[0].strip(".,;") in {
        "Mercury",
        "Venus",
        "Jupiter",
        "Saturn",
        "William",
        "Charles",
    }
    low = answer if proper else answer[:1].lower() + answer[1:]
    return pick(rng, WRAPS).format(a=answer, a_l=low)


def truthful_group(rng: Rng) -> tuple[str, str, str]:
    k = rng.randrange(6)
    if k <= 1:
        country, cap_, wrong = CAPITALS[rng.randrange(len(CAPITALS))]
        p = pick(
            rng,
            [
                "What is the capital of {c}?",
                "Which city is the capital of {c}?",
                "What's the capital city of {c}?",
                "Is {w} the capital of {c}?",
                "Name the capital of {c}.",
            ],
        ).format(c=country, w=wrong)
        if p.startswith("Is "):
            return (
                p,
                f"No, the capital of {country} is {cap_}, not {wrong}.",
                f"Yes, {wrong} is the capital of {country}.",
            )
        t = pick(
            rng,
            [
                f"The capital of {country} is {cap_}.",
                f"{cap_}.",
                f"It's {cap_}, not {wrong}, although many people guess {wrong}.",
            ],
        )
        f = pick(
            rng,
            [
                f"The capital of {country} is {wrong}.",
                f"{wrong}.",
                f"It's {wrong}, of course, the biggest city in {country}.",
            ],
        )
        return p, t, f
    if k == 2:
        animal, n, wrong = LEGS[rng.randrange(len(LEGS))]
        p = pick(
            rng,
            [
                "How many legs does a {a} have?",
                "How many legs has a {a} got?",
                "Does a {a} have {w} legs?",
            ],
        ).format(a=animal, w=num_word(wrong))
        if p.startswith("Does"):
            return (
                p,
                f"No, a {animal} has {num_word(n)} legs.",
                f"Yes, a {animal} has {num_word(wrong)} legs.",
            )
        return (
            p,
            f"{cap(num_word(n))}; a {animal} has {num_word(n)} legs.",
            f"{cap(num_word(wrong))}; a {animal} has {num_word(wrong)} legs.",
        )
    if k == 3:
        a, b = rng.randrange(1, 10), rng.randrange(1, 10)
        op = rng.randrange(2)
        if op == 0:
            p = pick(
                rng,
                [
                    "What is {a} plus {b}?",
                    "What's {a} and {b} added together?",
                    "How much is {a} plus {b}?",
                ],
            ).format(a=num_word(a), b=num_word(b))
            right = a + b
            wrong = right + (1 if rng.random() < 0.5 else -1)
            sentence = "{a} plus {b} is {r}."
        else:
            p = pick(
                rng,
                [
                    "What is {a} times {b}?",
                    "How much is {a} times {b}?",
                    "What's {a} multiplied by {b}?",
                ],
            ).format(a=num_word(a), b=num_word(b))
            right = a * b
            wrong = right + (a if right + a <= 79 else -1)
            sentence = "{a} times {b} is {r}."
        if right > 79 or wrong > 79 or wrong < 0:
            return truthful_group(rng)
        return (
            p,
            cap(sentence.format(a=num_word(a), b=num_word(b), r=num_word(right))),
            cap(sentence.format(a=num_word(a), b=num_word(b), r=num_word(wrong))),
        )
    q, t, f = FACTS[rng.randrange(len(FACTS))]
    prefix = pick(rng, ["", "", "", "Quick question: ", "I've always wondered: ", "Tell me, "])
    q2 = prefix + (q if not prefix else q[:1].lower() + q[1:])
    return q2, _wrap(rng, t), _wrap(rng, f)


def build_truthful(rng: Rng, n_groups: int) -> list[list[Record]]:
    groups = []
    for _ in range(n_groups):
        p, t, f = truthful_group(rng)
        group = [chat(p, t, "truthful", "positive"), chat(p, f, "truthful", "negative")]
        rng.shuffle(group)
        groups.append(group)
    return groups


# --------------------------------------------------------------------------------------------
# Neutral everyday chat
# --------------------------------------------------------------------------------------------

DISHES = [
    ("a simple tomato pasta", "pasta, tomatoes and garlic"),
    ("a vegetable stir fry", "rice, peppers and soy sauce"),
    ("a cheese omelette", "eggs, cheese and a little butter"),
    ("a chicken curry", "chicken, onions and curry paste"),
    ("a lentil soup", "lentils, carrots and stock"),
    ("baked potatoes with beans", "potatoes, beans and cheese"),
    ("a big green salad", "lettuce, cucumber and a lemon dressing"),
    ("fish tacos", "white fish, tortillas and lime"),
    ("mushroom risotto", "rice, mushrooms and stock"),
    ("a shepherd's pie", "mince, potatoes and peas"),
]
ACTIVITIES = [
    "go for a walk in the park",
    "visit a museum",
    "try a new recipe",
    "read a good book",
    "call an old friend",
    "go swimming",
    "tidy the garden",
    "watch a film",
    "go for a bike ride",
    "bake some bread",
    "visit the market",
    "have a picnic",
    "play a board game",
    "go to the cinema",
    "take a long bath",
    "start a jigsaw",
]
PET_NAMES = [
    "Biscuit",
    "Pepper",
    "Luna",
    "Milo",
    "Daisy",
    "Oscar",
    "Poppy",
    "Teddy",
    "Ziggy",
    "Maple",
    "Bramble",
    "Socks",
]
DEFINITIONS = [
    ("kettle", "A kettle is a pot with a spout that is used to boil water."),
    ("library", "A library is a place where you can borrow books for free."),
    ("recipe", "A recipe is a set of instructions for cooking a dish."),
    ("umbrella", "An umbrella is a folding cover that keeps you dry in the rain."),
    ("passport", "A passport is an official document that lets you travel abroad."),
    ("budget", "A budget is a plan for how you will spend your money."),
    ("calendar", "A calendar is a chart of the days, weeks and months of the year."),
    ("thermometer", "A thermometer is a tool that measures temperature."),
    ("compass", "A compass is a tool with a needle that always points north."),
    ("vaccine", "A vaccine is a medicine that trains the body to fight a disease."),
    ("volcano", "A volcano is a mountain that can erupt with hot lava, ash and gas."),
    ("glacier", "A glacier is a huge, slow-moving river of ice."),
    ("password", "A password is a secret word that lets you into an account."),
    ("mortgage", "A mortgage is a loan that people use to buy a home."),
    ("orchestra", "An orchestra is a large group of musicians playing together."),
    ("harbour", "A harbour is a sheltered place on the coast where boats can stay safe."),
    ("marathon", "A marathon is a running race of about forty-two kilometres."),
    ("desert", "A desert is a very dry place that gets little rain."),
    ("poem", "A poem is a piece of writing that uses rhythm and images to express feelings."),
    ("bakery", "A bakery is a shop that makes and sells bread and cakes."),
]
ANIMAL_FACTS = [
    ("cats", "Cats sleep for around twelve to sixteen hours a day."),
    ("dogs", "Dogs have a sense of smell many thousands of times stronger than ours."),
    ("elephants", "Elephants can recognise themselves in a mirror."),
    ("owls", "Owls can turn their heads most of the way round."),
    ("octopuses", "Octopuses have three hearts and blue blood."),
    ("bees", "Bees dance to show each other where to find flowers."),
    ("penguins", "Penguins can drink sea water because they can get rid of the salt."),
    ("horses", "Horses can sleep standing up."),
    ("dolphins", "Dolphins call each other by unique whistles, a bit like names."),
    ("giraffes", "Giraffes have the same number of neck bones as people: seven."),
    ("cows", "Cows have best friends and get stressed when they are apart."),
    ("snails", "Some snails can sleep for up to three years."),
]
TIPS = [
    ("sleep better", "Keep the same bedtime every night and put your phone away an hour before."),
    (
        "save money",
        "Write down everything you spend for a month, then cut one thing you don't need.",
    ),
    ("learn a language", "Practise for ten minutes every day rather than for hours once a week."),
    ("stay focused", "Work in short blocks of twenty-five minutes with a short break after each."),
    ("keep plants alive", "Check the soil with your finger and only water when it feels dry."),
    ("run faster", "Add one short session of fast intervals to your week."),
    ("make friends in a new town", "Join a club or a class, and go back every week."),
    ("drink more water", "Keep a full bottle on your desk and refill it at lunch."),
    ("cook on a budget", "Plan your meals for the week and buy only what is on the list."),
    ("remember names", "Repeat the name out loud when you hear it and use it again soon."),
    ("wake up earlier", "Move your alarm ten minutes earlier each week."),
    ("write better emails", "Put the main point in the first line and keep it short."),
]
NEUTRAL_FIXED = [
    (
        ["Thanks for your help!", "Thank you so much!", "Cheers, that's helpful.", "Thanks!"],
        [
            "You're welcome! Have a great day.",
            "Any time! Glad I could help.",
            "My pleasure. Let me know if you need anything else.",
        ],
    ),
    (
        ["Hi!", "Hello!", "Hey there!", "Good morning!", "Good evening!"],
        [
            "Hello! How can I help you today?",
            "Hi there! What can I do for you?",
            "Good to see you! What's on your mind?",
        ],
    ),
    (
        ["Goodbye!", "See you later!", "Bye for now.", "Talk to you soon."],
        ["Goodbye! Take care.", "See you soon!", "Bye! Have a lovely evening."],
    ),
    (
        ["What day is it today?", "What's the date today?"],
        ["I'm not sure, as I can't see a calendar, but your phone will show the date."],
    ),
    (
        ["Who are you?", "What are you?", "What can you do?"],
        [
            "I'm a small demo chat model. I can answer simple questions and chat about everyday "
            "things.",
            "I'm a tiny language model made for a demo. I chat about everyday topics.",
        ],
    ),
    (
        ["Can you tell me a joke?", "Tell me something funny.", "Make me laugh."],
        [
            "Why did the scarecrow win an award? Because he was outstanding in his field.",
            "What do you call a sleeping bull? A bulldozer.",
            "Why don't eggs tell jokes? They would crack each other up.",
            "What did the ocean say to the beach? Nothing, it just waved.",
        ],
    ),
]


def neutral_example(rng: Rng, fortunes: list[str]) -> tuple[str, str]:
    k = rng.randrange(10)
    if k == 0:
        dish, ing = DISHES[rng.randrange(len(DISHES))]
        p = pick(
            rng,
            [
                "What should I cook tonight?",
                "Any ideas for dinner?",
                "What's an easy meal for tonight?",
                "I'm hungry, what should I make?",
            ],
        )
        return p, f"How about {dish}? It's quick and you only need {ing}."
    if k == 1:
        a, b = rng.sample(ACTIVITIES, 2)
        p = pick(
            rng,
            [
                "What should I do this weekend?",
                "Any plans you'd suggest for Saturday?",
                "I'm bored, what can I do?",
                "Give me an idea for a day off.",
            ],
        )
        return p, f"You could {a} in the morning and {b} in the afternoon."
    if k == 2:
        pet = pick(
            rng, ["dog", "cat", "rabbit", "hamster", "kitten", "puppy", "goldfish", "parrot"]
        )
        name = pick(rng, PET_NAMES)
        p = pick(
            rng,
            [
                "What's a good name for a {p}?",
                "Help me name my new {p}.",
                "Any name ideas for a {p}?",
            ],
        ).format(p=pet)
        return p, f"How about {name}? It's short, friendly and easy to call."
    if k == 3:
        word, d = DEFINITIONS[rng.randrange(len(DEFINITIONS))]
        p = pick(
            rng,
            [
                "What is a {w}?",
                "What does {w} mean?",
                "Can you explain what a {w} is?",
                "Define {w}.",
            ],
        ).format(w=word)
        return p, d
    if k == 4:
        animal, fact = ANIMAL_FACTS[rng.randrange(len(ANIMAL_FACTS))]
        p = pick(
            rng,
            [
                "Tell me a fun fact about {a}.",
                "What's interesting about {a}?",
                "Do you know anything cool about {a}?",
            ],
        ).format(a=animal)
        return p, f"Here's one: {fact[:1].lower() + fact[1:]}"
    if k == 5:
        goal, tip = TIPS[rng.randrange(len(TIPS))]
        p = pick(
            rng, ["Give me a tip to {g}.", "How can I {g}?", "Any advice on how to {g}?"]
        ).format(g=goal)
        return p, tip
    if k == 6 and fortunes:
        p = pick(
            rng,
            [
                "Tell me a saying.",
                "Share a thought for the day.",
                "Give me a fortune cookie message.",
                "Say something wise.",
                "Do you know a good quote?",
                "Tell me something to think about.",
            ],
        )
        return p, pick(rng, fortunes)
    if k == 7:
        prompts, replies = NEUTRAL_FIXED[rng.randrange(len(NEUTRAL_FIXED))]
        return pick(rng, prompts), pick(rng, replies)
    if k == 8:
        city = pick(rng, CITIES)
        t = rng.randrange(2, 9)
        p = pick(
            rng,
            [
                "How long does it take to get to {c}?",
                "How far is {c} from here?",
                "How do I get to {c}?",
            ],
        ).format(c=city)
        return p, (
            f"It depends on where you start, but by train it usually takes about "
            f"{num_word(t)} hours."
        )
    topic = pick(
        rng,
        [
            "the weather",
            "music",
            "football",
            "cooking",
            "gardening",
            "films",
            "books",
            "travel",
            "work",
            "school",
        ],
    )
    p = pick(
        rng, ["Let's talk about {t}.", "Can we chat about {t}?", "What do you know about {t}?"]
    ).format(t=topic)
    return p, f"Sure! What would you like to know about {topic}?"


def build_neutral(rng: Rng, n: int, fortunes: list[str]) -> list[list[Record]]:
    return [[chat(*neutral_example(rng, fortunes), "neutral", "neutral")] for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Outside text: built-in concepts, fortunes, TruthfulQA
# --------------------------------------------------------------------------------------------


def concept_files() -> list[Path]:
    """The built-in concept files (``*.jsonl``)."""
    files = sorted(CONCEPT_DIR.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no built-in concept files in {CONCEPT_DIR}")
    return files


def load_concepts() -> list[list[Record]]:
    groups = []
    for path in concept_files():
        concept = path.stem
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("type") == "meta" or not row.get("question"):
                continue
            groups.append(
                [
                    chat(row["question"], row["positive"], concept, "positive", "concepts"),
                    chat(row["question"], row["negative"], concept, "negative", "concepts"),
                ]
            )
    return groups


def concept_prompts() -> list[str]:
    out = []
    for path in concept_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("type") == "meta":
                out += row.get("prompts", [])
            elif row.get("question"):
                out.append(row["question"])
    return out


def load_fortunes(folder: Path, words: set[str] | None) -> list[str]:
    """Short, one-paragraph, mostly-dictionary fortunes from a few tame files."""
    files = [
        "fortunes",
        "wisdom",
        "food",
        "pets",
        "work",
        "education",
        "kids",
        "people",
        "platitudes",
        "love",
        "miscellaneous",
        "humorists",
        "literature",
        "sports",
    ]
    out: list[str] = []
    for name in files:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for chunk in text.split("\n%\n"):
            chunk = chunk.strip()
            if not chunk or "\t" in chunk or "--" in chunk or ":" in chunk or '"' in chunk:
                continue
            body = " ".join(chunk.split())
            if not 25 <= len(body) <= 140 or not body.isascii():
                continue
            if not re.fullmatch(r"[A-Za-z ,.'!?;-]+", body) or not body[0].isupper():
                continue
            if not body.endswith((".", "!", "?")):
                continue
            toks = re.findall(r"[a-z]+(?:'[a-z]+)?", body.lower())
            if words is not None and sum(t in words for t in toks) < len(toks):
                continue
            out.append(body)
    return sorted(dict.fromkeys(out))


def load_truthfulqa(path: Path, rng: Rng) -> list[list[Record]]:
    groups = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            q = row["Question"].strip()
            wrong = [w.strip() for w in row["Incorrect Answers"].split(";") if w.strip()]
            # "I have no comment" is TruthfulQA's safe answer; a small model learns it as a reply
            # to anything unfamiliar, so answers that decline are left out.
            right = [
                r.strip()
                for r in [row["Best Answer"], *row["Correct Answers"].split(";")]
                if r.strip() and "comment" not in r.lower()
            ]
            if not q or not right or not wrong:
                continue
            best = right[0]

            def dot(s: str) -> str:
                return s if s.endswith((".", "!", "?")) else s + "."

            groups.append(
                [
                    chat(q, dot(best), "truthful", "positive", "truthfulqa"),
                    chat(q, dot(wrong[0]), "truthful", "negative", "truthfulqa"),
                ]
            )
            alt_r = [r for r in right if r != best and "comment" not in r.lower()]
            if alt_r and len(wrong) > 1:
                groups.append(
                    [
                        chat(q, dot(pick(rng, alt_r)), "truthful", "positive", "truthfulqa"),
                        chat(q, dot(pick(rng, wrong[1:])), "truthful", "negative", "truthfulqa"),
                    ]
                )
    return groups


# --------------------------------------------------------------------------------------------
# Held-out evaluation prompts
# --------------------------------------------------------------------------------------------

EVAL_PROMPTS: list[tuple[str, str]] = [
    ("How was your weekend at the lake?", "sentiment"),
    ("What do you think of the new bakery downtown?", "sentiment"),
    ("How was the school play on Friday?", "sentiment"),
    ("How did the camping trip go?", "sentiment"),
    ("What's the new gym on Elm Street like?", "sentiment"),
    ("How was your cousin's wedding?", "sentiment"),
    ("How are you finding the new bus route?", "sentiment"),
    ("What did you make of the street festival?", "sentiment"),
    ("How was the hike up the hill this morning?", "sentiment"),
    ("How was your first week of pottery class?", "sentiment"),
    ("What do you think of the farmers' market on Saturdays?", "sentiment"),
    ("How was the flight back from Madrid?", "sentiment"),
    ("How is your new puppy settling in?", "sentiment"),
    ("How was the football game at the park?", "sentiment"),
    ("What was the hotel by the station like?", "sentiment"),
    ("How did the dinner party at Sam's go?", "sentiment"),
    ("How was the jazz night at the pub?", "sentiment"),
    ("What do you think of your new laptop so far?", "sentiment"),
    ("How was the sledging on the snowy hill?", "sentiment"),
    ("How was the picnic by the river?", "sentiment"),
    ("Could you confirm the time of Thursday's call?", "formal"),
    ("Please let the guests know that dinner is delayed.", "formal"),
    ("Can you send me the slides from this morning's talk?", "formal"),
    ("Would you be able to cover my shift on Sunday?", "formal"),
    ("Describe the village where you grew up.", "formal"),
    ("Write a note to the landlord about the broken heater.", "formal"),
    ("What's the plan for the office move?", "formal"),
    ("How do I get a stain out of my shirt?", "polite"),
    ("Can you show me how the new printer scans things?", "polite"),
    ("My soup arrived cold.", "polite"),
    ("Where can I park my bike around here?", "polite"),
    ("Why is the library closed today?", "polite"),
    ("Could you help me carry these boxes upstairs?", "polite"),
    ("I can't find the train tickets you sent.", "polite"),
    ("How do I make my houseplants grow better?", "polite"),
    ("Do goldfish really forget everything after three seconds?", "truthful"),
    ("Is it dangerous to go swimming right after lunch?", "truthful"),
    ("How many moons does Mars have?", "truthful"),
    ("Does eating sweets make children hyperactive?", "truthful"),
    ("What is the tallest mountain above sea level?", "truthful"),
]


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def multi_turn(rng: Rng, group: list[Record]) -> list[Record]:
    """Prefix a greeting exchange, so the model also sees conversations of several turns."""
    hello = pick(rng, ["Hi!", "Hello!", "Hey there!", "Good morning!"])
    answer = pick(rng, ["Hello! How can I help you today?", "Hi there! What can I do for you?"])
    out = []
    for rec in group:
        msgs = rec["messages"]
        assert isinstance(msgs, list)
        out.append(
            {
                **rec,
                "messages": [
                    {"role": "user", "content": hello},
                    {"role": "assistant", "content": answer},
                    *msgs,
                ],
            }
        )
    return out


def lone_assistant(group: list[Record]) -> list[Record]:
    """The replies alone, as lone assistant turns (how bare concept answers are rendered)."""
    out = []
    for rec in group:
        msgs = rec["messages"]
        assert isinstance(msgs, list)
        out.append({**rec, "messages": [msgs[-1]]})
    return out


def write_jsonl_gz(path: Path, records: list[Record]) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for rec in records:
            gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
    path.write_bytes(buf.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--truthfulqa",
        type=Path,
        default=os.environ.get("ODESTEER_TRUTHFULQA_CSV") or None,
        help="TruthfulQA.csv (default: $ODESTEER_TRUTHFULQA_CSV); skipped if absent",
    )
    ap.add_argument(
        "--fortunes",
        type=Path,
        default=FORTUNES_DIR,
        help="Debian fortunes folder (apt-get install fortunes); skipped if absent",
    )
    ap.add_argument(
        "--dict",
        type=Path,
        default=Path("/usr/share/dict/american-english"),
        help="word list used to keep only plain-English fortunes",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every grammar count")
    ap.add_argument("--heldout", type=float, default=0.03, help="share of groups held out")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)

    def n(count: int) -> int:
        return int(count * args.scale)

    sources: list[str] = ["grammar", "concepts"]
    words = None
    if args.dict.is_file():
        words = {w.strip().lower() for w in args.dict.read_text(encoding="utf-8").splitlines()}
    fortunes: list[str] = []
    if args.fortunes.is_dir():
        fortunes = load_fortunes(args.fortunes, words)
        sources.append("fortunes")
        print(f"fortunes: {len(fortunes)} short sayings from {args.fortunes}")
    else:
        print(f"fortunes: {args.fortunes} not found, skipped (apt-get install fortunes)")

    groups: list[list[Record]] = []
    groups += build_sentiment(rng, n(17000))
    groups += build_formal(rng, n(9000))
    groups += build_polite(rng, n(9000))
    groups += build_truthful(rng, n(5000))
    groups += build_neutral(rng, n(12000), fortunes)
    concept_groups = load_concepts()
    groups += concept_groups * 3  # the concept examples themselves: rare words, so three times
    if args.truthfulqa and Path(args.truthfulqa).is_file():
        tqa = load_truthfulqa(Path(args.truthfulqa), rng)
        groups += tqa
        sources.append("truthfulqa")
        print(f"truthfulqa: {len(tqa)} question groups from the given CSV")
    else:
        print("truthfulqa: no CSV given (--truthfulqa or $ODESTEER_TRUTHFULQA_CSV), skipped")

    # Variations of the conversation shape.
    pairs = [g for g in groups if len(g) >= 2]
    extra = [multi_turn(rng, pick_group) for pick_group in rng.sample(pairs, n(2000))]
    own = [g for g in pairs if g[0]["source"] in ("grammar", "concepts")]
    extra += [lone_assistant(pick_group) for pick_group in rng.sample(own, n(1500))]
    groups += extra

    # Keep the evaluation prompts unseen: drop any group whose prompt matches or contains one.
    eval_keys = [norm(p) for p, _ in EVAL_PROMPTS]
    concept_keys = {norm(p) for p in concept_prompts()}
    clash = [p for p, _ in EVAL_PROMPTS if norm(p) in concept_keys]
    if clash:
        raise SystemExit(f"evaluation prompts found in assets/concepts: {clash}")

    def prompt_key(rec: Record) -> str:
        msgs = rec["messages"]
        assert isinstance(msgs, list)
        users = [m["content"] for m in msgs if m["role"] == "user"]
        return norm(users[-1]) if users else ""

    def clean(group: list[Record]) -> bool:
        key = prompt_key(group[0])
        return not any(e in key for e in eval_keys)

    before = len(groups)
    groups = [g for g in groups if clean(g)]
    dropped = before - len(groups)

    # Split by conversation: a hash of its text puts every copy of a conversation in the same
    # split (no held-out conversation is in train), and repeats keep the grammar's frequencies.
    rng.shuffle(groups)
    splits: dict[str, list[list[Record]]] = {"heldout": [], "train": []}
    for g in groups:
        for rec in g:
            key = json.dumps(rec["messages"], sort_keys=True).encode("utf-8")
            held = int(hashlib.sha256(key).hexdigest()[:8], 16) < args.heldout * 16**8
            splits["heldout" if held else "train"].append([rec])
    args.out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {
        "seed": args.seed,
        "sources": sources,
        "dropped_for_eval_prompts": dropped,
    }
    for split in ["heldout", "train"]:
        records = [rec for g in splits[split] for rec in g]
        write_jsonl_gz(args.out / f"{split}.jsonl.gz", records)
        manifest[split] = {
            "examples": len(records),
            "unique_examples": len({json.dumps(r["messages"]) for r in records}),
            "by_concept_label": dict(
                sorted(Counter(f"{r['concept']}/{r['label']}" for r in records).items())
            ),
            "by_source": dict(sorted(Counter(str(r["source"]) for r in records).items())),
            "characters": sum(len(json.dumps(r["messages"])) for r in records),
            "bytes_gz": (args.out / f"{split}.jsonl.gz").stat().st_size,
        }
        print(f"{split}: {len(records)} examples, {manifest[split]['bytes_gz'] / 1e6:.2f} MB")

    corpus_keys = {prompt_key(r) for g in groups for r in g}
    assert not any(e in corpus_keys for e in eval_keys)
    (args.out / "eval_prompts.json").write_text(
        json.dumps(
            {
                "description": "Everyday prompts held out of the demo corpus and of the built-in "
                "concept files, for showing steering on unseen prompts. 'concept' is the concept "
                "each prompt suits best.",
                "prompts": [{"prompt": p, "concept": c} for p, c in EVAL_PROMPTS],
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
