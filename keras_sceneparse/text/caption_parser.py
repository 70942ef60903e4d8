"""Captions to semantic trees: "A dog is sitting on a boat in front of a building." ->
``(in_front_of (on dog boat) building)``.

Lin et al., "Deep Structured Scene Parsing by Learning with Image Descriptions", CVPR 2016
(https://arxiv.org/abs/1604.02271), and Zhang et al., "Hierarchical Scene Parsing by Weakly
Supervised Learning with Image Descriptions", TPAMI 2019 (https://arxiv.org/abs/1709.09490),
train on trees whose leaves are the object classes a sentence mentions and whose internal
nodes are the relations it states, nested as the sentence nests them; the papers decompose
each sentence into such a tree of nouns and verb phrases. Here the trees come from three
steps that need no trained model and no nltk data file:

1. **Lexicon.** ``nltk``'s ``RegexpTokenizer`` splits the sentence; a longest-first phrase
   lookup maps word sequences to pre-terminal categories (:mod:`~keras_sceneparse.text.lexicon`):
   object mentions of the vocabulary, relation phrases, determiners and quantifiers, ``and``,
   ``of``, other prepositions, auxiliaries, posture verbs, ``there``, pronouns, and other
   words (adjectives, adverbs, unknown nouns and verbs).
2. **Grammar.** The category sequence is parsed with :data:`GRAMMAR` (an ``nltk.CFG``) by an
   ``nltk`` left-corner chart parser; of the parses in the chart, the one of least cost
   (:data:`PRODUCTION_COSTS`) is read.
3. **Semantics.** The parse becomes a tree of :mod:`keras_sceneparse.structure.tree`:
   ``A R B`` -> ``(R A B)``; a chain ``A R1 B R2 C`` -> ``(R2 (R1 A B) C)`` (left-nested, as in
   the papers' examples); coordination ``A and B`` -> ``(and A B)``, a group that a relation
   takes as a whole (``A and B R C`` -> ``(R (and A B) C)``); ``A with B`` -> ``(with A B)``;
   ``there is A R B`` -> ``(R A B)``. A participle after an object starts the next link of
   the chain ("a person holding a bag walks on the road" -> ``(on (hold person bag)
   street/road)``). The relation of a predicate is that of its last relation phrase
   ("is sitting on" -> ``on``, "riding on" -> ``ride``).

When the grammar finds no parse, a left-to-right chunker joins each object mention to the
tree built so far, using the last relation phrase before it. A class appears at most once
per tree; a repeated mention is dropped and reported.
"""

import dataclasses
import inspect
import math

import networkx as nx
import nltk
from nltk.grammar import Nonterminal
from nltk.parse.chart import ChartParser, LeafEdge, LeftCornerChartParser

from keras_sceneparse.structure.tree import object_tree, relation_tree
from keras_sceneparse.text import lexicon
from keras_sceneparse.text.lexicon import (
    AND,
    AUXILIARY,
    DETERMINER,
    OBJECT,
    OF,
    OTHER,
    PREPOSITION,
    PRONOUN,
    PUNCTUATION,
    RELATION,
    THERE,
    VERB,
    PhraseMatcher,
)
from keras_sceneparse.text.objects import (
    SYSU_SCENES_NON_OBJECTS,
    SYSU_SCENES_OBJECTS,
    VOC_NON_OBJECTS,
    VOC_OBJECTS,
)
from keras_sceneparse.text.relations import CATCH_ALL_RELATION, POSTURE_VERB_RELATIONS, RELATIONS

COORDINATION = "and"

DATASETS = {
    "sysu_scenes": (SYSU_SCENES_OBJECTS, SYSU_SCENES_NON_OBJECTS),
    "voc": (VOC_OBJECTS, VOC_NON_OBJECTS),
}

# Pre-terminals are the lexicon categories. A Clause is a subject Group followed by Links;
# each Link is a predicate and the Group it relates the tree so far to, or a predicate
# whose complement names nothing of the vocabulary ("on the ground"), which is dropped.
# A predicate may start with a distributive subject ("two persons, each one is riding a
# horse"). An object may be preceded by a partitive ("on the back of a horse") and followed
# by a post-modifier ("a glass of wine"). Words before the first object mention that name
# nothing of the vocabulary ("A close-up of a dog", "A living room with a sofa") form the
# Opening; words after the last are removed beforehand (_prepare).
GRAMMAR = nltk.CFG.fromstring(
    """
    S -> Clause | Intro Clause | Opening Clause | Opening Intro Clause
    Intro -> 'there' | 'there' 'aux'
    Opening -> Filler | Opening Filler
    Filler -> 'x' | 'verb' | 'det' | 'aux' | 'rel' | 'and' | 'pron' | 'there' | 'prep' | 'of'
    Clause -> Group | Group Links
    Links -> Link | Links Link
    Link -> Pred Group | 'and' Pred Group | 'and' Intro Group
    Link -> Pred Dropped | 'and' Pred Dropped | Pred Dropped 'and' Group
    Group -> NP | Group 'and' NP
    NP -> Head | Head Postmodifier
    Head -> 'obj' | Premodifier 'obj'
    Premodifier -> Simple | Partitive | Partitive Simple
    Partitive -> Simple 'of'
    Simple -> 'det' | 'pron' | Adjectives | 'det' Adjectives
    Postmodifier -> Adjectives | 'of' Simple
    Adjectives -> 'x' | 'verb' | Adjectives 'x' | Adjectives 'verb' | Adjectives 'and' 'x'
    Dropped -> Premodifier | Premodifier Postmodifier | Dropped 'and' Premodifier
    Pred -> Core | Lead Core
    Lead -> 'aux' | Each | Each 'aux' | 'aux' Each
    Each -> 'det' | 'pron' | 'det' 'pron' | 'det' 'aux'
    Core -> Relations | Other Relations | Relations Other | Other Relations Other | Other | Core 'and' Core
    Relations -> 'rel' | Relations 'rel' | Relations Other 'rel' | Relations 'aux' 'rel'
    Other -> Word | Other Word
    Word -> 'x' | 'verb' | 'there' | 'prep' | 'of'
    """
)

# The grammar is ambiguous; the parse read is the derivation of least total cost over the
# chart. A predicate without a relation phrase joins with the catch-all relation, a dropped
# complement or a post-modifier loses words.
PRODUCTION_COSTS = {
    ("Core", ("Other",)): 3,
    ("Link", ("Pred", "Dropped")): 1,
    ("Link", ("and", "Pred", "Dropped")): 1,
    ("Link", ("Pred", "Dropped", "and", "Group")): 2,
    ("NP", ("Head", "Postmodifier")): 1,
}

MAX_GRAMMAR_TERMINALS = 32  # longer category sequences go straight to the chunker (real captions: <= 23)
MAX_CACHED_PARSES = 20000

# Categories whose runs read as one item: "one of the", "is being", ", and", "big black".
_MERGED = {OTHER, VERB, DETERMINER, AUXILIARY, PRONOUN, AND, PREPOSITION}


@dataclasses.dataclass(frozen=True)
class LexicalItem:
    """A word sequence of a caption with its pre-terminal category.

    ``value`` is the class of an object mention, the label of a relation phrase, else None.
    """

    category: str
    text: str
    value: str | None = None


@dataclasses.dataclass(frozen=True)
class CaptionParse:
    """What :meth:`CaptionParser.analyse` found in one caption.

    Attributes:
        tree: the semantic tree (``networkx.DiGraph`` of the tree contract), or None when
            the caption mentions no object of the vocabulary.
        complete: True when the grammar parsed the caption and the tree holds every object
            mention, joined by relation phrases of the vocabulary. False for a single object,
            a repeated class that was dropped, a phrase outside the vocabulary joined with the
            catch-all relation, or a caption that only the chunker could read.
        reason: why the parse is not complete (``"; "``-separated), None when it is.
        objects: the classes the caption mentions, in order, each once.
        tokens: the caption's tokens after lower-casing and spelling correction.
    """

    tree: nx.DiGraph | None
    complete: bool
    reason: str | None
    objects: list[str]
    tokens: list[str]


class CaptionParser:
    """Parses image captions into semantic trees over a vocabulary of objects and relations.

    Args:
        dataset: ``"sysu_scenes"`` (the 37 SYSU-Scenes tags) or ``"voc"`` (the 20 PASCAL VOC
            classes): selects the shipped object vocabulary. Either this or ``objects``.
        objects: ``{class: [surface forms]}``, replacing the data set's vocabulary. Regular
            plurals of the forms are added; the class name itself is always a form.
        relations: ``{relation: [phrases]}`` (base forms; verbs are inflected), replacing
            :data:`keras_sceneparse.text.relations.RELATIONS`. ``"and"`` is added when missing.
        non_objects: compounds that contain a class word but name something else
            (``"coffee table"``); defaults to the data set's list, or none with ``objects``.
        catch_all: the relation joining objects linked by a phrase outside the vocabulary;
            must be one of ``relations`` (default ``"beside"``).

    Example:

    >>> parser = CaptionParser("sysu_scenes")
    >>> from keras_sceneparse.structure import to_bracketed
    >>> to_bracketed(parser.parse("A dog is sitting on a boat in front of a building."))
    '(in_front_of (on dog boat) building)'
    """

    def __init__(self, dataset=None, *, objects=None, relations=None, non_objects=None, catch_all=None):
        if dataset is not None and dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}.")
        if dataset is None and objects is None:
            raise ValueError("Pass a dataset ('sysu_scenes' or 'voc') or an objects vocabulary; got neither.")
        default_objects, default_non_objects = DATASETS.get(dataset, (None, []))
        if objects is None:
            objects = default_objects
        elif non_objects is None:
            default_non_objects = []
        self._objects = _check_vocabulary("objects", objects)
        self._relations = _check_vocabulary("relations", RELATIONS if relations is None else relations)
        self._relations.setdefault(COORDINATION, [])
        non_objects = default_non_objects if non_objects is None else non_objects
        if isinstance(non_objects, str) or not all(isinstance(form, str) for form in non_objects):
            raise TypeError(f"non_objects must be a list of strings, got {non_objects!r}.")
        self._object_forms = _expand(self._objects, _noun_forms, "object")
        self._relation_forms = _expand(self._relations, _relation_forms, "relation")
        catch_all = CATCH_ALL_RELATION if catch_all is None else catch_all
        if catch_all not in self._relations:
            raise ValueError(f"catch_all must be one of the relations {sorted(self._relations)}, got {catch_all!r}.")
        self.catch_all = catch_all
        self.dataset = dataset
        self._matcher = PhraseMatcher(self._lexicon([_phrase(form) for form in non_objects]))
        self._posture_verbs = {
            form: relation
            for verb, relation in POSTURE_VERB_RELATIONS.items()
            if relation in self._relations
            for form in lexicon.verb_forms(verb)
        }
        # Recent nltk stops a chart parse after 5 s of wall time; our inputs are bounded by
        # MAX_GRAMMAR_TERMINALS instead, so the same caption gets the same tree on a busy machine.
        unbounded = {"max_time": None} if "max_time" in inspect.signature(ChartParser.__init__).parameters else {}
        self._chart_parser = LeftCornerChartParser(GRAMMAR, **unbounded)
        # Captions repeat their shapes (the 10,043 real ones have 1,439 distinct category
        # sequences), so the best parse of each sequence is kept.
        self._parses = {}

    def relation_of(self, predicate):
        """The relation label a predicate's :class:`LexicalItem` s express, or None.

        That of the last relation phrase ("is sitting next to" -> ``beside``); without one,
        the relation a posture verb implies ("sits a chair" -> ``on``, see
        :data:`~keras_sceneparse.text.relations.POSTURE_VERB_RELATIONS`).
        """
        relations = [item.value for item in predicate if item.category == RELATION]
        if relations:
            return relations[-1]
        for item in reversed(predicate):
            for word in reversed(item.text.split()):
                if word in self._posture_verbs:
                    return self._posture_verbs[word]
        return None

    # --- vocabulary ---------------------------------------------------------------------

    @property
    def objects(self):
        """The object classes, sorted."""
        return sorted(self._objects)

    @property
    def relations(self):
        """The relation labels, sorted."""
        return sorted(self._relations)

    @property
    def object_vocabulary(self):
        """``{class: [surface forms]}`` as matched, plurals and class names included."""
        return _invert(self._object_forms, self._objects)

    @property
    def relation_vocabulary(self):
        """``{relation: [phrases]}`` as matched, inflections included."""
        return _invert(self._relation_forms, self._relations)

    def _lexicon(self, non_objects):
        """Phrase -> (category, value); on a tie the earlier category wins."""
        entries = {}
        for form in non_objects:
            entries.setdefault(form, (OTHER, None))
            entries.setdefault(lexicon.noun_plural(form), (OTHER, None))
        for form, label in self._object_forms.items():
            entries.setdefault(form, (OBJECT, label))
        for form, label in self._relation_forms.items():
            entries.setdefault(form, (RELATION, label))
        closed_classes = [
            (AND, lexicon.CONJUNCTIONS),
            (OF, ["of"]),
            (PREPOSITION, lexicon.PREPOSITIONS),
            (THERE, lexicon.EXISTENTIALS),
            (DETERMINER, lexicon.DETERMINERS),
            (AUXILIARY, lexicon.AUXILIARIES),
            (PRONOUN, lexicon.PRONOUNS),
        ]
        for category, words in closed_classes:
            for word in words:
                entries.setdefault(word, (category, None))
        for verb in lexicon.POSTURE_AND_MOTION_VERBS:
            for form in lexicon.phrase_forms(verb):
                entries.setdefault(form, (VERB, None))
        return entries

    # --- parsing ------------------------------------------------------------------------

    def tokenize(self, sentence):
        """The caption's tokens (see :func:`keras_sceneparse.text.lexicon.tokenize`)."""
        return lexicon.tokenize(_check_sentence(sentence))

    def lexical_items(self, sentence):
        """The caption as :class:`LexicalItem` s, longest phrases first, before any grammar."""
        return self._lexical_items(self.tokenize(sentence))

    def _lexical_items(self, tokens):
        items = []
        position = 0
        while position < len(tokens):
            length, entry = self._matcher.match(tokens, position)
            if length:
                category, value = entry
            else:
                length, category, value = 1, _unknown_category(tokens[position]), None
                if tokens[position] == "'s" and "with" in self._relations:
                    # Possession ("a person's bag") reads as "with".
                    category, value = RELATION, "with"
            items.append(LexicalItem(category, " ".join(tokens[position : position + length]), value))
            position += length
        return items

    def parse(self, sentence):
        """The semantic tree of ``sentence`` (a ``networkx.DiGraph``), or None."""
        return self.analyse(sentence).tree

    def analyse(self, sentence):
        """A :class:`CaptionParse` of ``sentence``. Never raises for a string."""
        tokens = self.tokenize(sentence)
        items = _prepare(self._lexical_items(tokens))
        mentioned = list(dict.fromkeys(item.value for item in items if item.category == OBJECT))
        if not mentioned:
            return CaptionParse(None, False, "no object of the vocabulary", [], tokens)
        reading = self._grammar_reading(items)
        if reading is None:
            reading = self._chunk(items)
            reading.notes.insert(0, "the grammar found no parse, objects joined left to right")
        if len(mentioned) == 1:
            reading.notes.insert(0, f"only one object ({mentioned[0]!r})")
        notes = list(dict.fromkeys(reading.notes))
        return CaptionParse(reading.tree, not notes, "; ".join(notes) or None, mentioned, tokens)

    def _grammar_reading(self, items):
        categories = tuple(item.category for item in items)
        if len(categories) > MAX_GRAMMAR_TERMINALS:
            return None
        if categories not in self._parses:
            if len(self._parses) >= MAX_CACHED_PARSES:
                self._parses.clear()
            self._parses[categories] = self._best_parse(categories)
        parse = self._parses[categories]
        if parse is None:
            return None
        reading = _Reading(self)
        reading.read(parse, items)
        return reading

    def _best_parse(self, categories):
        """The least-cost parse of ``categories`` (leaves are token positions), or None."""
        chart = self._chart_parser.chart_parse(list(categories))
        roots = chart.select(start=0, end=len(categories), is_complete=True, lhs=GRAMMAR.start())
        memo = {}
        best_cost, best_parse = math.inf, None
        for root in roots:
            cost, parse = _cheapest_derivation(chart, root, memo)
            if cost < best_cost:
                best_cost, best_parse = cost, parse
        return best_parse

    def _chunk(self, items):
        """Left-to-right fallback: each object joins the tree by the last relation phrase before it."""
        reading = _Reading(self)
        pending = []
        for item in items:
            if item.category != OBJECT:
                pending.append(item)
                continue
            if reading.tree is None:
                reading.tree, reading.leaves = object_tree(item.value), {item.value}
            elif any(entry.category == RELATION for entry in pending) or not any(
                entry.category == AND for entry in pending
            ):
                reading.join(pending, [item.value])
            else:
                reading.join_group(COORDINATION, [item.value])
            pending = []
        return reading


class _Reading:
    """Builds the tree of one parse, bottom-up, and collects what had to be dropped."""

    def __init__(self, parser):
        self.parser = parser
        self.tree = None
        self.leaves = set()
        self.notes = []

    def read(self, parse, items):
        """Builds the tree from the best parse of S, whose leaves index ``items``."""
        clause = next(child for child in parse if child.label() == "Clause")
        group, *rest = clause
        self.tree, self.leaves = self.build_group(_classes(group, items), set())
        if rest:
            for link in _links(rest[0]):
                self.read_link(link, items)

    def read_link(self, link, items):
        predicate, group, dropped = [], None, False
        for child in link:
            if not isinstance(child, nltk.Tree):
                continue  # 'and'
            if child.label() == "Pred":
                predicate = [items[index] for index in child.leaves()]
            elif child.label() == "Group":
                group = _classes(child, items)
            else:
                dropped = True  # a complement outside the vocabulary
        if group is None:
            return
        if dropped:  # "... a cup in the hand and a bag": only "and" relates the group
            self.join_group(COORDINATION, group)
        else:
            self.join(predicate, group)

    def build_group(self, classes, taken):
        """Left-nested ``and`` tree of the group's classes, each class once."""
        tree, leaves = None, set()
        for label in classes:
            if label in taken or label in leaves:
                self.notes.append(f"repeated class {label!r} dropped")
                continue
            leaf = object_tree(label)
            tree = leaf if tree is None else relation_tree(COORDINATION, tree, leaf)
            leaves.add(label)
        return tree, leaves

    def join(self, predicate, classes):
        label = self.parser.relation_of(predicate)
        if label is None:
            label = self.parser.catch_all
            words = " ".join(item.text for item in predicate if item.category in (OTHER, VERB, PREPOSITION, OF))
            if words:
                self.notes.append(f"relation phrase {words!r} not in the vocabulary, joined with {label!r}")
            else:
                self.notes.append(f"no relation phrase before {classes[0]!r}, joined with {label!r}")
        self.join_group(label, classes)

    def join_group(self, label, classes):
        group, leaves = self.build_group(classes, self.leaves)
        if group is None:
            return
        self.tree = relation_tree(label, self.tree, group)
        self.leaves |= leaves


def _links(links):
    """The Link subtrees of a left-recursive Links tree, in sentence order."""
    ordered = []
    while links[0].label() == "Links":
        links, last = links
        ordered.append(last)
    ordered.append(links[0])
    return ordered[::-1]


def _classes(group, items):
    return [items[index].value for index in group.leaves() if items[index].category == OBJECT]


def _cheapest_derivation(chart, edge, memo):
    """``(cost, nltk.Tree)`` of the least-cost derivation of ``edge``; leaves are token positions.

    Dynamic programming over the chart's child pointers, so it stays polynomial where the
    number of parses grows exponentially (nltk's ``Chart.trees`` enumerates them all).
    """
    if isinstance(edge, LeafEdge):
        return 0, edge.start()
    if edge in memo:
        return memo[edge]
    memo[edge] = (math.inf, None)  # an edge reached again through a unary cycle derives nothing
    lhs = edge.lhs().symbol()
    rhs = tuple(symbol.symbol() if isinstance(symbol, Nonterminal) else symbol for symbol in edge.rhs())
    own_cost = PRODUCTION_COSTS.get((lhs, rhs), 0)
    best_cost, best_tree = math.inf, None
    for pointers in chart.child_pointer_lists(edge):
        cost, children = own_cost, []
        for child in pointers:
            child_cost, child_tree = _cheapest_derivation(chart, child, memo)
            cost += child_cost
            if cost >= best_cost:
                break
            children.append(child_tree)
        else:
            best_cost, best_tree = cost, nltk.Tree(lhs, children)
    memo[edge] = (best_cost, best_tree)
    return memo[edge]


def _prepare(items):
    """Normalises the item sequence for the grammar.

    Adjacent object mentions form a compound named by the last ("motorcycle rider" ->
    person, "passenger bus" -> bus); a comma between object mentions is a conjunction
    ("a man, a woman and a child"); other punctuation is dropped; runs of other words merge
    into one item; anything after the last object mention is dropped, as it names nothing
    of the vocabulary.
    """
    compounds = []
    for index, item in enumerate(items):
        previous = compounds[-1] if compounds else None
        if item.category == OBJECT and previous is not None and previous.category == OBJECT:
            compounds[-1] = LexicalItem(OBJECT, f"{previous.text} {item.text}", item.value)
        elif item.category != PUNCTUATION:
            compounds.append(item)
        elif item.text == "," and _between_objects(items, index):
            compounds.append(LexicalItem(AND, ",", None))
    merged = _merge_runs(_collapse_opening(compounds))
    last = max((index for index, item in enumerate(merged) if item.category == OBJECT), default=-1)
    return merged[: last + 1]


def _merge_runs(items):
    merged = []
    for item in items:
        previous = merged[-1] if merged else None
        if previous is not None and item.category == previous.category and item.category in _MERGED:
            merged[-1] = LexicalItem(item.category, f"{previous.text} {item.text}", None)
        else:
            merged.append(item)
    return merged


def _collapse_opening(items):
    """Words before the first object become one item, except its premodifier and "there is".

    They name nothing of the vocabulary, and their readings would only multiply the chart.
    """
    first = next((index for index, item in enumerate(items) if item.category == OBJECT), None)
    if first is None:
        return items
    start = first
    while start > 0 and items[start - 1].category in (DETERMINER, OTHER, VERB, OF, PRONOUN):
        start -= 1
    if start > 0 and items[start - 1].category == AUXILIARY:
        start -= 1
    if start > 0 and items[start - 1].category == THERE:
        start -= 1
    elif start > 0 and items[start].category == AUXILIARY:
        start += 1
    if start <= 1:
        return items
    opening = LexicalItem(OTHER, " ".join(item.text for item in items[:start]), None)
    return [opening] + items[start:]


def _between_objects(items, index):
    """Whether the comma at ``index`` follows an object and precedes one (after modifiers)."""
    if index == 0 or items[index - 1].category != OBJECT:
        return False
    for item in items[index + 1 :]:
        if item.category == OBJECT:
            return True
        if item.category not in (DETERMINER, OTHER, AND, VERB, OF):
            return False
    return False


def _unknown_category(token):
    if token[:1].isdigit():
        return DETERMINER  # "2 friends"
    return OTHER if token[:1].isalpha() or token.startswith("'") else PUNCTUATION


def _check_sentence(sentence):
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}: {sentence!r:.80}.")
    return sentence


def _check_vocabulary(name, vocabulary):
    if not isinstance(vocabulary, dict) or not vocabulary:
        raise TypeError(f"{name} must be a non-empty dict {{label: [phrases]}}, got {vocabulary!r:.80}.")
    checked = {}
    for label, phrases in vocabulary.items():
        if not isinstance(label, str) or not label.strip():
            raise TypeError(f"{name} labels must be non-empty strings, got {label!r}.")
        if isinstance(phrases, str) or not all(isinstance(phrase, str) for phrase in phrases):
            raise TypeError(f"{name}[{label!r}] must be a list of strings, got {phrases!r:.80}.")
        checked[label] = list(phrases)
    return checked


def _phrase(text):
    return " ".join(lexicon.tokenize(text))


def _noun_forms(label, phrases):
    explicit = [_phrase(label)] + [_phrase(phrase) for phrase in phrases]
    return explicit, [lexicon.noun_plural(phrase) for phrase in explicit]


def _relation_forms(label, phrases):
    explicit = [_phrase(phrase) for phrase in phrases]
    if label != COORDINATION:
        explicit.insert(0, _phrase(label))
    generated = [form for phrase in explicit for form in lexicon.phrase_forms(phrase)]
    return explicit, generated


def _expand(vocabulary, forms_of, kind):
    """Surface form -> label. Explicit forms must be unique; generated ones never override."""
    explicit_forms, generated_forms = {}, {}
    for label, phrases in vocabulary.items():
        explicit, generated = forms_of(label, phrases)
        for form in explicit:
            if not form:
                continue
            owner = explicit_forms.setdefault(form, label)
            if owner != label:
                raise ValueError(f"The {kind} phrase {form!r} is given for both {owner!r} and {label!r}.")
        for form in generated:
            generated_forms.setdefault(form, set()).add(label)
    expanded = dict(explicit_forms)
    for form, labels in generated_forms.items():
        if form not in expanded and len(labels) == 1:  # an inflection two labels share names neither
            expanded[form] = labels.pop()
    return expanded


def _invert(forms, vocabulary):
    inverted = {label: [] for label in vocabulary}
    for form, label in forms.items():
        inverted[label].append(form)
    return {label: sorted(inverted[label]) for label in sorted(inverted)}
