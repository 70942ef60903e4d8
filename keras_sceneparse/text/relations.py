"""The relation vocabulary: relation labels and the linking phrases each one covers.

Chosen from the phrases that link two object mentions in the 5,045 SYSU-Scenes sentences,
counted by ``benchmarks/caption_parser_coverage.py`` (docs/text.md has the table with the
counts). Eleven labels name what a tree's internal node asserts about its two children;
``"with"`` (accompaniment, possession, wearing: "a person with a bag") and ``"and"``
(objects listed together: "a dog and a ball are on the grass") are the two structural
labels of the papers' trees that assert no more than the sentence does.

Phrases are written in base form: a phrase that starts with a verb is matched in all its
inflections (``"sit on"`` also matches "sits on", "sitting on", "sat on"); the posture and
motion verbs of :data:`keras_sceneparse.text.lexicon.POSTURE_AND_MOTION_VERBS` are skipped
before a preposition, so "is sitting on" relates by "on" and needs no entry of its own. A
verb phrase followed by a preposition takes the preposition's relation ("flying over" ->
``above``), unless the two form an entry of their own ("riding on" -> ``ride``).

``CATCH_ALL_RELATION`` joins two objects linked by a phrase outside the vocabulary ("a
person fixing a bicycle"): ``beside`` asserts only that the objects are close, which holds
for the interactions the sentences describe with verbs the vocabulary lacks (fixing,
inspecting, herding), so the fallback never claims a wrong spatial order;
:meth:`CaptionParser.analyse` reports each such join as partial.
"""

CATCH_ALL_RELATION = "beside"

RELATIONS = {
    "on": [
        "on", "upon", "onto", "on top of", "on the top of", "atop", "on the back of",
        "on the surface of", "along", "down", "up", "across", "on the branch of",
    ],
    "in": [
        "in", "inside", "into", "within", "inside of", "in the middle of", "through",
    ],
    "under": ["under", "beneath", "underneath", "below", "under the shade of"],
    "above": ["above", "over"],
    "behind": [
        "behind", "at the back of", "in the back of", "in back of", "beyond", "follow",
        "walk after", "run after", "chase after",
    ],
    "in front of": [
        "in front of", "in the front of", "ahead of", "before", "lead",
    ],
    "beside": [
        "beside", "next to", "next", "by", "near", "near by", "nearby", "close to", "close by",
        "alongside", "at", "around", "between", "among", "amongst", "against", "past",
        "opposite", "opposite to", "across from", "toward", "towards", "outside", "outside of",
        "by the side of", "at the side of", "on the side of", "on one side of",
        "on the one side of", "on both sides of", "on both side of", "on either side of",
        "on each side of", "on the other side of", "on the opposite side of", "to the side of",
        "on the left of", "on the right of", "to the left of", "to the right of",
        "on the left side of", "on the right side of", "on the edge of", "at the edge of",
        "on the bank of", "on the shore of", "on the coast of",
        # contact and care: the objects are close, no spatial order is stated
        "touch", "pet", "stroke", "hug", "kiss", "feed", "lick", "sniff", "smell", "milk",
        "shear", "eat", "eat from", "drink", "drink from", "talk to", "wait for", "pass",
        "approach", "accompany",
    ],
    "hold": [
        "hold", "carry", "hold up", "raise", "lift", "take", "grab", "pick up", "reach",
        "reach for", "pull", "push", "drag", "support", "use", "work on", "type on",
        "talk on", "call on", "make", "make a call with", "hold on to", "hang on to",
    ],
    "ride": [
        "ride", "ride on", "ride in", "drive", "run", "paddle", "row", "sail", "steer",
        "ride on the back of",
    ],
    "play": [
        "play", "play with", "kick", "hit", "throw", "catch", "chase", "swing", "bounce",
        "toss", "fetch",
    ],
    "look at": [
        "look at", "watch", "stare at", "gaze at", "look up at", "look down at", "glance at",
        "look toward", "look towards", "view", "observe", "face", "look into", "overlook",
    ],
    "with": [
        "along with", "together with", "accompanied by", "wear", "have", "dress in",
    ],
    "and": [],
}
"""Relation label -> phrases (base forms) that express it."""

POSTURE_VERB_RELATIONS = {
    "sit": "on", "stand": "on", "lie": "on", "lay": "on", "rest": "on", "perch": "on",
    "sleep": "on", "park": "on", "kneel": "on", "squat": "on", "crouch": "on", "graze": "on",
    "walk": "hold", "fly": "in", "swim": "in", "float": "on",
}
"""Posture or motion verb -> relation when no preposition follows ("a person sits a chair",
"a cow grazing grass", "a woman walks the dog"); other verbs leave such a join to the
catch-all."""
