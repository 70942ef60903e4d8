"""The closed-class words of captions, their inflections and the tokeniser.

Everything here is data or string rules: no nltk corpus, tagger or lemmatiser data file is
needed, so parsing works on a machine where ``nltk.download`` was never run.
"""

import re
import unicodedata

from nltk.tokenize import RegexpTokenizer

# Pre-terminal categories of the caption grammar (see caption_parser.GRAMMAR).
OBJECT = "obj"  # a mention of a vocabulary class
RELATION = "rel"  # a relation phrase of the vocabulary
AND = "and"  # coordination of objects
VERB = "verb"  # posture and motion verbs whose preposition carries the relation
AUXILIARY = "aux"  # be-forms and relative pronouns, skipped inside predicates
DETERMINER = "det"  # articles, numerals, quantifiers, possessives
PRONOUN = "pron"  # it, them, him: objects that are not named
THERE = "there"  # existential "there is/are"
PREPOSITION = "prep"  # prepositions that express no relation of the vocabulary: from, for, to
OF = "of"  # "the back of a horse", "a glass of wine"
OTHER = "x"  # anything else: adjectives, adverbs, unknown nouns and verbs
PUNCTUATION = "punct"

DETERMINERS = [
    "a", "an", "the", "some", "any", "another", "other", "each", "every", "several", "many",
    "few", "a few", "more", "most", "both", "all", "no", "this", "these", "those", "his",
    "her", "its", "their", "my", "our", "your", "one", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "ten", "eleven", "twelve", "dozens of", "a dozen", "one of",
    "two of", "three of", "some of", "each of", "all of", "both of", "lots of", "a lot of",
    "plenty of", "a number of", "a couple of", "couple of", "a pair of", "pair of",
    "pairs of", "a group of", "group of", "groups of", "a bunch of", "a herd of", "herd of",
    "a flock of", "flock of", "a line of", "a row of", "rows of", "a pile of", "a set of",
    "a team of", "a crowd of", "a fleet of", "a pack of", "a litter of", "a variety of",
    "an assortment of", "a collection of", "a close up of", "a closeup of", "a picture of",
    "a photo of", "an image of", "a view of",
]
AUXILIARIES = [
    "is", "are", "was", "were", "be", "been", "being", "am", "ia", "has been", "have been",
    "who", "which", "whitch", "that", "where", "also", "then",
    "respectively", "still", "just", "can", "could", "will", "would", "may", "might",
    "seems to be", "appears to be", "get", "gets", "getting", "got", "'re", "'m", "'ve", "'ll",
    "'d",
]
PRONOUNS = ["it", "them", "him", "he", "she", "they", "itself", "himself", "herself",
            "themselves", "each other", "one another", "me", "you", "we", "us", "something",
            "somethind", "anything", "everything"]
CONJUNCTIONS = ["and", "&", "plus", "as well as", "or", "nor", "while", "whilst", "as"]
PREPOSITIONS = ["from", "for", "to", "about", "like", "without", "via", "during", "after",
                "since", "until", "per", "except", "despite", "unlike", "amid", "amidst"]
EXISTENTIALS = ["there", "here"]

# Posture and motion verbs: "sitting on" relates by its preposition ("on"), so these are
# skipped when a relation phrase follows (a verb with an object of its own is a relation
# phrase, e.g. "holding", "riding").
POSTURE_AND_MOTION_VERBS = [
    "sit", "stand", "lie", "lay", "rest", "walk", "park", "stay", "wait", "fly", "float",
    "perch", "place", "put", "set", "locate", "position", "graze", "sleep", "move", "travel",
    "go", "come", "seat", "kneel", "squat", "crouch", "lean", "hang", "jump", "stop", "swim",
    "hide", "pose", "stroll", "wander", "roam", "dock", "moor", "land", "cruise", "speed",
    "race", "gather", "relax", "lounge", "nap", "curl", "stretch", "display",
    "arrange", "line", "pile", "stack", "sunbathe", "hover", "glide", "soar", "trot",
    "gallop", "settle", "step",
]

# Token-level corrections of misspelt function words and verbs seen in the sentences;
# misspelt object names are surface forms of their class instead (objects.py).
SPELLING_CORRECTIONS = {
    "nxet": "next", "nxt": "next", "fron": "front", "frount": "front", "font": "front",
    "beind": "behind", "behinds": "behind", "besides": "beside", "ot": "to", "olong": "along",
    "hodling": "holding", "holidng": "holding", "holdin": "holding", "helding": "holding",
    "carring": "carrying", "rding": "riding", "hiting": "hitting", "palying": "playing",
    "paly": "play", "palys": "plays", "reachin": "reaching", "togther": "together",
    "acup": "a cup", "atable": "a table", "acouch": "a couch", "acomputer": "a computer",
    "adesk": "a desk", "adish": "a dish", "abar": "a bar", "witha": "with a",
    "anther": "another", "eanch": "each", "thre": "there", "tere": "there", "thee": "there",
    "thr": "the", "th": "the", "tha": "the", "ans": "and", "tow": "two", "towo": "two",
    "wto": "two", "wo": "two", "there's": "there is", "it's": "it is", "that's": "that is",
    "he's": "he is", "she's": "she is", "who's": "who is",
    "touchs": "touches", "watchs": "watches", "restting": "resting", "sittig": "sitting",
    "siting": "sitting", "staning": "standing", "standin": "standing", "waling": "walking",
    "steping": "stepping", "stetching": "stretching", "brunch": "branch", "sheer": "shear",
    "sheering": "shearing",
    "infront": "in front", "nextto": "next to", "ontop": "on top", "inbetween": "in between",
}

# Verb inflections that the spelling rules of verb_forms do not produce.
IRREGULAR_VERBS = {
    "sit": ["sat", "seated"], "stand": ["stood"], "lie": ["lying", "lay", "lain", "lies"],
    "lay": ["laid", "laying"], "hold": ["held"], "ride": ["rode", "ridden"], "run": ["ran"],
    "fly": ["flew", "flown", "flies"], "go": ["went", "gone", "goes"],
    "drive": ["drove", "driven"], "eat": ["ate", "eaten"], "drink": ["drank", "drunk"],
    "swim": ["swam"], "wear": ["wore", "worn"],
    "hang": ["hung"], "put": ["put"], "set": ["set"], "lean": ["leant"], "come": ["came"],
    "carry": ["carried", "carries", "carrying"], "kneel": ["knelt"],
    "catch": ["caught"], "read": ["read"], "feed": ["fed"], "hit": ["hit"], "sleep": ["slept"],
    "take": ["took", "taken"], "get": ["got", "gotten"], "throw": ["threw", "thrown"],
    "have": ["has", "had"], "make": ["made"], "lead": ["led"], "swing": ["swung"],
}

TOKEN_PATTERN = r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)?|[^\sa-z\d]"
TOKENIZER = RegexpTokenizer(TOKEN_PATTERN)

_VOWELS = "aeiou"


def tokenize(text):
    """Lower-case word, number and punctuation tokens of ``text``, accents folded to ASCII.

    Hyphens inside words become spaces; misspellings in :data:`SPELLING_CORRECTIONS` are
    corrected (a token may become several: ``"witha"`` -> ``"with", "a"``); possessive
    ``'s`` is split off.
    """
    folded = unicodedata.normalize("NFKD", text.replace("\u2019", "'")).encode("ascii", "ignore").decode("ascii")
    folded = folded.lower()
    folded = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", folded)  # "flat-screen" -> "flat screen"
    tokens = []
    for token in TOKENIZER.tokenize(folded):
        token = SPELLING_CORRECTIONS.get(token, token)
        if "'" in token:
            word, _, suffix = token.partition("'")
            tokens.extend(SPELLING_CORRECTIONS.get(word, word).split())
            tokens.append("'" + suffix)
        else:
            tokens.extend(token.split())
    return tokens


def noun_plural(noun):
    """The regular plural of a (multi-word) noun: the last word is inflected."""
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in _VOWELS:
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _doubles_final_consonant(verb):
    # sit -> sitting, run -> running; but visit, park, rain, fix, play stay single.
    vowel_groups = re.findall(r"[aeiou]+", verb)
    return (
        len(verb) >= 3
        and len(vowel_groups) == 1
        and verb[-1] not in _VOWELS + "wxy"
        and verb[-2] in _VOWELS
        and verb[-3] not in _VOWELS
    )


def verb_forms(verb):
    """Base, third person, -ing and past forms of ``verb`` (the first word of a phrase)."""
    forms = {verb}
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(verb + "es")
    elif verb.endswith("y") and verb[-2:-1] not in tuple(_VOWELS):
        forms.add(verb[:-1] + "ies")
    else:
        forms.add(verb + "s")
    if verb.endswith("ie"):
        forms.update({verb[:-2] + "ying", verb + "d"})
    elif verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        forms.update({verb[:-1] + "ing", verb + "d"})
    elif _doubles_final_consonant(verb):
        forms.update({verb + verb[-1] + "ing", verb + verb[-1] + "ed"})
    elif verb.endswith("y") and verb[-2:-1] not in tuple(_VOWELS):
        forms.update({verb + "ing", verb[:-1] + "ied"})
    else:
        forms.update({verb + "ing", verb + "ed"})
    forms.update(IRREGULAR_VERBS.get(verb, ()))
    return sorted(forms)


def phrase_forms(phrase):
    """Inflections of a relation phrase: its first word as a verb, the rest unchanged.

    ``"sit on"`` -> ``["sat on", "sit on", "sits on", "sitting on", ...]``. Phrases that start
    with a preposition are returned unchanged.
    """
    first, _, rest = phrase.partition(" ")
    if first in NON_VERBS:
        return [phrase]
    return [f"{form} {rest}".strip() for form in verb_forms(first)]


# Words that start relation phrases and are not verbs (never inflected).
NON_VERBS = {
    "in", "on", "at", "by", "to", "of", "under", "over", "above", "below", "beneath",
    "underneath", "behind", "beside", "besides", "near", "next", "inside", "into", "onto",
    "upon", "atop", "across", "along", "alongside", "around", "among", "amongst", "between",
    "through", "toward", "towards", "past", "against", "beyond", "close", "far", "from", "off",
    "out", "outside", "within", "with", "without", "opposite", "nearby", "like", "for", "up",
    "down", "after", "before", "top", "front", "left", "right", "together", "ahead",
    "accompanied",
}


class PhraseMatcher:
    """Longest-first lookup of multi-word phrases in a token list.

    ``phrases`` maps a phrase (words separated by single spaces) to any value;
    :meth:`match` returns ``(length, value)`` of the longest phrase starting at a position.
    """

    def __init__(self, phrases):
        self._phrases = {tuple(phrase.split()): value for phrase, value in phrases.items()}
        self._longest = max((len(words) for words in self._phrases), default=0)

    def match(self, tokens, start):
        for length in range(min(self._longest, len(tokens) - start), 0, -1):
            value = self._phrases.get(tuple(tokens[start : start + length]))
            if value is not None:
                return length, value
        return 0, None
