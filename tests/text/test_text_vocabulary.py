"""The shipped object and relation vocabularies: complete, unambiguous, reachable."""

import pytest

from keras_sceneparse.structure import leaves, to_bracketed
from keras_sceneparse.text import (
    RELATIONS,
    SYSU_SCENES_CLASSES,
    SYSU_SCENES_OBJECTS,
    VOC_CLASSES,
    VOC_OBJECTS,
    CaptionParser,
    lexicon,
)

# The data sets' own class lists, typed from their documentation (SYSU-Scenes classes.txt,
# the VOC devkit), independent of keras_sceneparse.text.objects.
SYSU_TAGS = (
    "aeroplane bag ball bench bicycle bird boat bottle building bus camera car cat cellphone chair cow cup "
    "dog glasses grass horse laptop motorbike person racket rail sea sheep sky sofa street/road suitcase "
    "table train tree tv/monitor umbrella"
).split()
VOC_DEVKIT = (
    "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
    "pottedplant sheep sofa train tvmonitor"
).split()

VOCABULARIES = {"sysu_scenes": SYSU_SCENES_OBJECTS, "voc": VOC_OBJECTS}


def test_class_lists_match_the_data_sets():
    assert list(SYSU_SCENES_CLASSES) == SYSU_TAGS and len(SYSU_TAGS) == 37
    assert list(VOC_CLASSES) == VOC_DEVKIT and len(VOC_DEVKIT) == 20
    assert list(SYSU_SCENES_OBJECTS) == SYSU_TAGS
    assert list(VOC_OBJECTS) == VOC_DEVKIT


@pytest.mark.parametrize("dataset", sorted(VOCABULARIES))
def test_no_surface_form_names_two_classes(dataset):
    owners = {}
    for label, forms in VOCABULARIES[dataset].items():
        for form in forms:
            key = " ".join(lexicon.tokenize(form))
            assert key == form.lower(), f"{form!r} is not written as the tokeniser reads it"
            assert owners.setdefault(key, label) == label, f"{form!r} is listed for {owners[key]!r} and {label!r}"
    parser = CaptionParser(dataset)
    expanded = [form for forms in parser.object_vocabulary.values() for form in forms]
    assert len(expanded) == len(set(expanded))


@pytest.mark.parametrize("dataset", sorted(VOCABULARIES))
def test_every_class_and_surface_form_is_reachable(dataset):
    parser = CaptionParser(dataset)
    assert parser.objects == sorted(VOCABULARIES[dataset])
    for label, forms in VOCABULARIES[dataset].items():
        for form in [label, *forms]:
            analysis = parser.analyse(f"There is {form} here.")
            assert analysis.objects == [label], (form, analysis.objects)
            assert leaves(analysis.tree) == [label]


@pytest.mark.parametrize(
    ("dataset", "caption", "expected"),
    [
        ("sysu_scenes", "Men and women", ["person"]),
        ("sysu_scenes", "children, boys and girls", ["person"]),
        ("voc", "planes, jets and an airplane", ["aeroplane"]),
        ("voc", "a motorcycle", ["motorbike"]),
        ("voc", "a television", ["tvmonitor"]),
        ("sysu_scenes", "a television", ["tv/monitor"]),
        ("voc", "a houseplant", ["pottedplant"]),
        ("sysu_scenes", "the highway", ["street/road"]),
        ("sysu_scenes", "the railway", ["rail"]),
        ("sysu_scenes", "the ocean", ["sea"]),
        ("sysu_scenes", "a lawn", ["grass"]),
        ("voc", "a bike", ["bicycle"]),
        ("voc", "a diningtable", ["diningtable"]),
        ("sysu_scenes", "glasses", ["glasses"]),
        ("sysu_scenes", "a glass", ["cup"]),
        ("voc", "a bus stop", []),
    ],
)
def test_synonyms_and_plurals(dataset, caption, expected):
    assert CaptionParser(dataset).analyse(caption).objects == expected


def test_every_relation_label_is_reachable_by_its_phrases():
    parser = CaptionParser("sysu_scenes")
    assert parser.relations == sorted(RELATIONS)
    assert 8 <= len(parser.relations) <= 15
    for label, phrases in RELATIONS.items():
        if label == "and":
            assert to_bracketed(parser.parse("a dog and a cat")) == "(and dog cat)"
            continue
        for phrase in [label, *phrases]:
            tree = parser.parse(f"a dog {phrase} a cat")
            assert tree is not None and tree.nodes[tree.graph["root"]]["label"] == label, phrase


def test_relation_phrases_are_unique():
    owners = {}
    for label, phrases in RELATIONS.items():
        for phrase in phrases:
            owner = owners.setdefault(phrase, label)
            assert owner == label, f"{phrase!r} is listed for {owner!r} and {label!r}"
    parser = CaptionParser("voc")
    expanded = [phrase for phrases in parser.relation_vocabulary.values() for phrase in phrases]
    assert len(expanded) == len(set(expanded))


@pytest.mark.parametrize(
    ("verb", "forms"),
    [
        ("sit", {"sits", "sitting", "sat"}),
        ("ride", {"rides", "riding", "rode"}),
        ("lie", {"lies", "lying"}),
        ("carry", {"carries", "carrying", "carried"}),
        ("hold", {"holds", "holding", "held"}),
        ("watch", {"watches", "watching"}),
    ],
)
def test_verb_inflections(verb, forms):
    assert forms <= set(lexicon.verb_forms(verb))


def test_noun_plurals():
    assert [lexicon.noun_plural(noun) for noun in ["bus", "bench", "sky", "toy", "cell phone", "person"]] == [
        "buses", "benches", "skies", "toys", "cell phones", "persons",
    ]


def test_tokenizer_folds_case_accents_and_misspellings():
    assert lexicon.tokenize("A Café-Bike nxet to a dog's bowl!") == [
        "a", "cafe", "bike", "next", "to", "a", "dog", "'s", "bowl", "!",
    ]
    assert lexicon.tokenize("There's a cat witha ball") == ["there", "is", "a", "cat", "with", "a", "ball"]
