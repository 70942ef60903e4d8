"""CaptionParser: hand-written captions with the trees the rules of docs/text.md give them."""

import ast
import random
import string
from pathlib import Path

import networkx as nx
import nltk
import pytest

from keras_sceneparse.structure import leaves, to_bracketed, validate_tree
from keras_sceneparse.text import CaptionParse, CaptionParser

PACKAGE = Path(__file__).resolve().parents[2] / "keras_sceneparse" / "text"


@pytest.fixture(scope="module")
def parsers():
    return {"sysu_scenes": CaptionParser("sysu_scenes"), "voc": CaptionParser("voc")}


# (data set, caption, expected bracketed tree, complete). The trees are written from the
# rules (A R B -> (R A B); chains nest to the left; "and" groups; one leaf per class), not
# from the parser's output.
CASES = [
    # A R B, and the relation phrases of the vocabulary
    ("sysu_scenes", "A cat is on the sofa.", "(on cat sofa)", True),
    ("sysu_scenes", "A boat is in the sea", "(in boat sea)", True),
    ("sysu_scenes", "A cat is lying under a chair", "(under cat chair)", True),
    ("sysu_scenes", "A bird flies over the sea", "(above bird sea)", True),
    ("sysu_scenes", "A person is standing behind a car", "(behind person car)", True),
    ("sysu_scenes", "A child is watching TV", "(look_at person tv/monitor)", True),
    ("sysu_scenes", "A man kicks a ball", "(play person ball)", True),
    ("sysu_scenes", "A man rides a bike.", "(ride person bicycle)", True),
    # chains nest to the left; participles start the next link
    ("sysu_scenes", "A dog is sitting on a boat in front of a building.", "(in_front_of (on dog boat) building)", True),
    ("sysu_scenes", "A bus is on the road under the sky", "(under (on bus street/road) sky)", True),
    ("sysu_scenes", "A person holding an umbrella walks on the road", "(on (hold person umbrella) street/road)", True),
    ("sysu_scenes", "A person is holding an umbrella walking on the road.",
     "(on (hold person umbrella) street/road)", True),
    ("sysu_scenes", "A person is holding a cup and resting on a table", "(on (hold person cup) table)", True),
    # plurals, synonyms, multi-word names, data-set specific forms
    ("sysu_scenes", "Two dogs are standing on the grasses", "(on dog grass)", True),
    ("sysu_scenes", "Two persons are sitting on a sofa", "(on person sofa)", True),
    ("voc", "A woman sitting on a couch.", "(on person sofa)", True),
    ("sysu_scenes", "A girl is talking on a cell phone", "(hold person cellphone)", True),
    ("voc", "Four people sitting around a dining table.", "(beside person diningtable)", True),
    ("sysu_scenes", "Three horses on the grass land", "(on horse grass)", True),
    ("voc", "A cat sleeping next to a potted plant", "(beside cat pottedplant)", True),
    ("sysu_scenes", "A man is using a computer", "(hold person laptop)", True),
    ("voc", "A man is using a computer", "(hold person tvmonitor)", True),
    ("sysu_scenes", "A woman wearing glasses holds a glass", "(hold (with person glasses) cup)", True),
    ("sysu_scenes", "A cat sleeps on the coffee table.", "(on cat table)", True),
    ("voc", "A cat sleeps on the coffee table.", "cat", False),
    ("voc", "A motorcycle rider next to a car.", "(beside person car)", True),
    # misspellings seen in the data
    ("sysu_scenes", "A peson is nxet to a motobike", "(beside person motorbike)", True),
    ("sysu_scenes", "A dog is in frount of a television", "(in_front_of dog tv/monitor)", True),
    # conjunctions and "with"
    ("sysu_scenes", "A dog and a ball are on the grass.", "(on (and dog ball) grass)", True),
    ("sysu_scenes", "A person and a dog are walking on the road", "(on (and person dog) street/road)", True),
    ("sysu_scenes", "Some cars are in front of a building and a tree.", "(in_front_of car (and building tree))", True),
    ("voc", "A man, a dog and a horse.", "(and (and person dog) horse)", True),
    ("sysu_scenes", "A person with a bag is next to a train on the rails",
     "(on (beside (with person bag) train) rail)", True),
    ("sysu_scenes", "A person with a bag and a suitcase is in front of the road.",
     "(in_front_of (with person (and bag suitcase)) street/road)", True),
    ("sysu_scenes", "A chair is next to a table with a laptop and a monitor on it.",
     "(with (beside chair table) (and laptop tv/monitor))", True),
    # existential "there is"
    ("sysu_scenes", "There is a train on the railway", "(on train rail)", True),
    ("sysu_scenes", "There are two persons on one motorbike", "(on person motorbike)", True),
    ("sysu_scenes", "There are two persons, each one is riding a horse.", "(ride person horse)", True),
    # words that name nothing of the vocabulary
    ("voc", "A dog lying on a rug in front of a sofa.", "(in_front_of dog sofa)", True),
    ("voc", "A living room with a sofa and a chair.", "(and sofa chair)", True),
    ("voc", "A black and white dog looking at a cat.", "(look_at dog cat)", True),
    ("sysu_scenes", "A bird stands on the back of a horse", "(on bird horse)", True),
    ("sysu_scenes", "A glass of wine is next to a bottle", "(beside cup bottle)", True),
    ("sysu_scenes", "A cat sits on a person's lap", "(on cat person)", True),
    # posture verbs without a preposition
    ("voc", "A woman walks the dog", "(hold person dog)", True),
    ("sysu_scenes", "A cow grazing grass", "(on cow grass)", True),
    # repeated classes, unknown phrases, the chunker, one object, none
    ("sysu_scenes", "A person in front of a person next to a dog", "(beside person dog)", False),
    ("sysu_scenes", "A man and a woman are riding horses", "(ride person horse)", False),
    ("sysu_scenes", "A person scolds a dog", "(beside person dog)", False),
    ("voc", "Three sheep on a dirt road shot from a car.", "(beside sheep car)", False),
    ("sysu_scenes", "A person holds laptop an bag on a sofa", "(on (beside (hold person laptop) bag) sofa)", False),
    ("sysu_scenes", "A cat.", "cat", False),
    ("sysu_scenes", "A lovely day at the park.", None, False),
]


@pytest.mark.parametrize(("dataset", "caption", "expected", "complete"), CASES)
def test_captions_give_the_trees_of_the_rules(parsers, dataset, caption, expected, complete):
    analysis = parsers[dataset].analyse(caption)
    got = None if analysis.tree is None else to_bracketed(analysis.tree)
    assert got == expected, analysis.reason
    assert analysis.complete is complete
    assert (analysis.reason is None) is complete
    if analysis.tree is not None:
        validate_tree(analysis.tree)


def test_analyse_reports_what_was_dropped(parsers):
    sysu = parsers["sysu_scenes"]
    assert sysu.analyse("A person in front of a person next to a dog").reason == "repeated class 'person' dropped"
    assert sysu.analyse("A person scolds a dog").reason == (
        "relation phrase 'scolds' not in the vocabulary, joined with 'beside'"
    )
    assert sysu.analyse("A cat.").reason == "only one object ('cat')"
    assert sysu.analyse("A lovely day.").reason == "no object of the vocabulary"
    assert sysu.analyse("A motorbike is next to another motorbike.").reason == (
        "only one object ('motorbike'); repeated class 'motorbike' dropped"
    )
    assert "the grammar found no parse" in sysu.analyse("A person holds laptop an bag on a sofa").reason


def test_analysis_fields(parsers):
    analysis = parsers["sysu_scenes"].analyse("There are two persons sitting on a sofa with a dog under it.")
    assert isinstance(analysis, CaptionParse)
    assert analysis.objects == ["person", "sofa", "dog"]
    assert analysis.tokens[:5] == ["there", "are", "two", "persons", "sitting"]
    assert to_bracketed(analysis.tree) == "(with (on person sofa) dog)"
    assert to_bracketed(parsers["sysu_scenes"].parse("A cat is on the sofa")) == "(on cat sofa)"
    assert parsers["sysu_scenes"].parse("Nothing here") is None


def test_the_tree_follows_the_contract(parsers):
    tree = parsers["sysu_scenes"].parse("A dog is sitting on a boat in front of a building.")
    assert isinstance(tree, nx.DiGraph)
    assert sorted(tree.nodes) == list(range(5)) and tree.graph["root"] == 4
    assert tree.nodes[4] == {"kind": "relation", "label": "in front of"}
    assert leaves(tree) == ["dog", "boat", "building"]


def test_a_sentence_longer_than_the_grammar_takes_is_chunked(parsers):
    caption = "A dog is on a sofa " + "and it is very very happy and sleepy " * 10 + "next to a cat"
    analysis = parsers["sysu_scenes"].analyse(caption)
    assert to_bracketed(analysis.tree) == "(beside (on dog sofa) cat)"
    assert not analysis.complete


@pytest.mark.parametrize("value", [None, 3, b"a dog on a sofa", ["a dog"], 2.5])
def test_non_strings_raise_type_error(parsers, value):
    with pytest.raises(TypeError, match="sentence must be a str"):
        parsers["sysu_scenes"].analyse(value)
    with pytest.raises(TypeError):
        parsers["voc"].parse(value)


def _random_captions(count, seed=0):
    rng = random.Random(seed)
    words = [
        "a", "the", "dog", "dogs", "person", "and", "with", "on", "in front of", "there", "is", "are",
        "two", "holding", "riding", "sofa", "tv/monitor", "street/road", "of", "from", "it", "each",
        "one", "next", "to", "glasses", "glass", "'s", ",", ".", "!", "?", "-", "pottedplant", "café",
        "über", "狗", "😀", "\x00", "\n", "\t", "   ", "12", "3.5", "'", '"', "(", ")", "/", "\\",
    ]
    alphabet = string.printable + "éñüßøΩЖ中文😀\u200b\u2019\ufeff"
    for index in range(count):
        if index % 3 == 0:
            yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        else:
            yield " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))


@pytest.mark.parametrize("dataset", ["sysu_scenes", "voc"])
def test_never_raises_on_strings_and_returns_valid_trees(parsers, dataset):
    parser = parsers[dataset]
    captions = list(_random_captions(600)) + ["", " ", "...", "\x00", "a" * 100_000, "dog " * 5000]
    for caption in captions:
        analysis = parser.analyse(caption)
        if analysis.tree is None:
            assert not analysis.complete and analysis.reason
            continue
        validate_tree(analysis.tree)
        labels = leaves(analysis.tree)
        assert len(labels) == len(set(labels)), caption
        assert set(labels) <= set(parser.objects)
        assert set(labels) <= set(analysis.objects)
        internal = [data["label"] for _, data in analysis.tree.nodes(data=True) if data["kind"] == "relation"]
        assert set(internal) <= set(parser.relations)


def test_parsing_needs_no_nltk_data(monkeypatch):
    def no_data(*args, **kwargs):
        raise LookupError("nltk data is not available in this test")

    monkeypatch.setattr(nltk.data, "find", no_data)
    monkeypatch.setattr(nltk.data, "load", no_data)
    monkeypatch.setattr(nltk, "download", no_data)
    parser = CaptionParser("voc")
    assert to_bracketed(parser.parse("A man riding a horse next to a car.")) == "(beside (ride person horse) car)"


def test_the_text_package_imports_no_framework():
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"tensorflow", "keras", "jax", "torch"}, f"{path.name} imports {name}"


def test_custom_vocabularies():
    parser = CaptionParser(
        objects={"cup": ["mug"], "table": ["desk"], "cat": []},
        relations={"on": ["on top of"], "near": ["next to", "by"]},
        catch_all="near",
    )
    assert parser.objects == ["cat", "cup", "table"]
    assert parser.relations == ["and", "near", "on"]
    assert to_bracketed(parser.parse("Two mugs sit on top of the desk")) == "(on cup table)"
    assert to_bracketed(parser.parse("A cat and a mug by a desk")) == "(near (and cat cup) table)"
    analysis = parser.analyse("A cat sniffs a mug")
    assert to_bracketed(analysis.tree) == "(near cat cup)" and not analysis.complete
    assert "mugs" in parser.object_vocabulary["cup"] and "cups" in parser.object_vocabulary["cup"]
    assert parser.relation_vocabulary["near"] == ["by", "near", "next to"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "Pass a dataset"),
        ({"dataset": "coco"}, ValueError, "dataset must be one of"),
        ({"objects": {"cup": ["mug"], "glass": ["mug"]}}, ValueError, "'mug' is given for both"),
        ({"dataset": "voc", "catch_all": "near"}, ValueError, "catch_all must be one of"),
        ({"objects": ["cup"]}, TypeError, "objects must be a non-empty dict"),
        ({"objects": {"cup": "mug"}}, TypeError, "must be a list of strings"),
        ({"dataset": "voc", "relations": {"on": ["on"], "near": ["on"]}}, ValueError, "'on' is given for both"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, error, message):
    with pytest.raises(error, match=message):
        CaptionParser(**kwargs)
