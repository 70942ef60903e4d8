"""Linking phrases and caption-parser coverage on the real SYSU-Scenes and PASCAL sentences.

    python benchmarks/caption_parser_coverage.py \
        --sysu ../shared/datasets/sysu_scenes --pascal ../shared/datasets/pascal_sentences

Part (a), the measurement the relation vocabulary was chosen from: for every pair of
consecutive object mentions in a sentence, the words between them (determiners,
auxiliaries and punctuation removed; modifiers after the last determiner belong to the
second object and are cut), grouped by base form ("holding", "holds" -> "hold"), with
their count and the relation label the parser gives them ("?" where none: the catch-all),
then the same counts per relation label.

Part (b): the parser over every SYSU-Scenes sentence and every PASCAL caption: how many
give a complete tree, a partial one (with the reasons) or none, the number of exceptions
(must be 0), the relation labels and tree sizes, and the time taken. ``--check-labels``
adds the fraction of tree leaves whose class is present in the image's label map, a check
of the object vocabularies against the annotations.
"""

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path

from keras_sceneparse.structure import leaves, to_bracketed
from keras_sceneparse.text import RELATIONS, VOC_CLASSES, CaptionParser, lexicon
from keras_sceneparse.text.lexicon import AND, AUXILIARY, DETERMINER, OBJECT, PUNCTUATION, THERE

def read_sentences(directory, file_name, field, option):
    """``(image, sentence)`` pairs of a data set's JSON-lines file."""
    path = Path(directory) / file_name
    if not path.is_file():
        sys.exit(f"{option}: {path} not found; pass the folder that holds {file_name}.")
    rows = [json.loads(line) for line in path.open()]
    return [(row["image"], sentence) for row in rows for sentence in row[field]]


# --- (a) linking phrases ------------------------------------------------------------------

_IRREGULAR_BASE = {form: base for base, forms in lexicon.IRREGULAR_VERBS.items() for form in forms}
_ARTICLES = {"a", "an", "the"}
# Verbs whose base form is known, to choose between candidate stems ("using" -> "use", not "us").
_KNOWN_VERBS = (
    {phrase.split()[0] for phrases in RELATIONS.values() for phrase in phrases}
    | set(lexicon.POSTURE_AND_MOTION_VERBS)
    | set(lexicon.IRREGULAR_VERBS)
    | set("make take use raise chase smile pose graze dance ride drive face wave type serve".split())
)


def base_form(word):
    """``"holding"`` -> ``"hold"``, ``"sitting"`` -> ``"sit"``: the verb whose inflections include ``word``."""
    if word in _IRREGULAR_BASE:
        return _IRREGULAR_BASE[word]
    if word.endswith("ing"):
        stem = word[:-3]
        candidates = [stem, stem + "e", stem[:-1]]
    elif word.endswith("ies"):
        candidates = [word[:-3] + "y"]
    elif word.endswith("es"):
        candidates = [word[:-2], word[:-1]]
    elif word.endswith("ed"):
        candidates = [word[:-2], word[:-1], word[:-3]]
    elif word.endswith("s") and not word.endswith("ss"):
        candidates = [word[:-1]]
    else:
        return word
    # "red" and "bus" are no inflections of "re" and "bu": stems are at least three letters.
    matching = [candidate for candidate in candidates if len(candidate) > 2 and word in lexicon.verb_forms(candidate)]
    known = [candidate for candidate in matching if candidate in _KNOWN_VERBS]
    if known or matching:
        return (known or matching)[0]
    return word


def linking_phrases(parser, sentences):
    """``{normalised phrase: Counter(label)}`` over consecutive object mentions."""
    counts = collections.defaultdict(collections.Counter)
    for _, sentence in sentences:
        items = parser.lexical_items(sentence)
        mentions = [index for index, item in enumerate(items) if item.category == OBJECT]
        for start, end in zip(mentions, mentions[1:]):
            between = items[start + 1 : end]
            determiners = [index for index, item in enumerate(between) if item.category == DETERMINER]
            if determiners:
                between = between[: determiners[-1]]
            words = [
                base_form(word)
                for item in between
                if item.category not in (DETERMINER, AUXILIARY, PUNCTUATION, THERE)
                for word in item.text.split()
                if word not in _ARTICLES and word[0].isalpha()
            ]
            counts[" ".join(words) or "(nothing)"][link_label(parser, between, adjacent=end == start + 1)] += 1
    return counts


def link_label(parser, between, adjacent):
    """The relation the parser gives the words between two mentions, as its chunker does."""
    label = parser.relation_of(between)
    if label is not None:
        return label
    if any(item.category == AND or item.text == "," for item in between):
        return "and"
    return "compound" if adjacent else "?"  # "motorcycle rider": one mention, named by its last word


def print_linking_phrases(title, counts, top):
    total = sum(sum(labels.values()) for labels in counts.values())
    ranked = sorted(counts.items(), key=lambda entry: (-sum(entry[1].values()), entry[0]))
    print(f"\n## {title}: {total} links between consecutive object mentions, {len(ranked)} distinct phrases\n")
    print("| rank | phrase (base forms) | count | cumulative | relation |")
    print("|---:|---|---:|---:|---|")
    cumulative = 0
    for rank, (phrase, labels) in enumerate(ranked[:top], 1):
        count = sum(labels.values())
        cumulative += count
        label = ", ".join(name if len(labels) == 1 else f"{name} {n}" for name, n in labels.most_common())
        print(f"| {rank} | {phrase} | {count} | {100 * cumulative / total:.1f}% | {label} |")
    by_label = collections.defaultdict(collections.Counter)
    for phrase, labels in counts.items():
        for label, count in labels.items():
            by_label[label][phrase] = count
    print("\nlinks per relation label (? = outside the vocabulary, joined with the catch-all;")
    print("compound = adjacent mentions read as one object), with their most frequent phrases:\n")
    print("| relation | links | share | most frequent phrases (count) |")
    print("|---|---:|---:|---|")
    for label, phrases in sorted(by_label.items(), key=lambda entry: -sum(entry[1].values())):
        count = sum(phrases.values())
        common = ", ".join(f"{phrase} ({n})" for phrase, n in phrases.most_common(8))
        print(f"| {label} | {count} | {100 * count / total:.1f}% | {common} |")


# --- (b) coverage -------------------------------------------------------------------------


def reason_kind(reason):
    """A reason without its quoted specifics, for the histogram."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "…", reason)


def coverage(parser, sentences, label_maps=None, show=0):
    complete, partial, empty, exceptions = 0, 0, 0, []
    several, several_complete = 0, 0
    partial_reasons, empty_reasons = collections.Counter(), collections.Counter()
    unknown_phrases = collections.Counter()
    relation_labels, sizes = collections.Counter(), collections.Counter()
    present_leaves, checked_leaves = 0, 0
    examples = []
    start = time.perf_counter()
    for image, sentence in sentences:
        try:
            analysis = parser.analyse(sentence)
        except Exception as error:  # noqa: BLE001 - counting them is the point
            exceptions.append((sentence, repr(error)))
            continue
        if analysis.tree is None:
            empty += 1
            empty_reasons[analysis.reason] += 1
            continue
        tree = analysis.tree
        sizes[len(leaves(tree))] += 1
        if len(analysis.objects) >= 2:
            several += 1
            several_complete += analysis.complete
        relation_labels.update(tree.nodes[node]["label"] for node in tree if tree.nodes[node]["kind"] == "relation")
        if analysis.complete:
            complete += 1
        else:
            partial += 1
            for part in analysis.reason.split("; "):
                partial_reasons[reason_kind(part)] += 1
                found = re.match(r"relation phrase '([^']*)' not in the vocabulary", part)
                if found:
                    unknown_phrases[" ".join(base_form(word) for word in found.group(1).split())] += 1
            if len(examples) < show:
                examples.append((sentence, to_bracketed(tree), analysis.reason))
        if label_maps is not None and image in label_maps:
            for label in leaves(tree):
                checked_leaves += 1
                present_leaves += label in label_maps[image]
    seconds = time.perf_counter() - start
    return {
        "sentences": len(sentences),
        "complete": complete,
        "partial": partial,
        "none": empty,
        "several_classes": (several_complete, several),
        "exceptions": exceptions,
        "partial_reasons": partial_reasons,
        "none_reasons": empty_reasons,
        "unknown_phrases": unknown_phrases,
        "relation_labels": relation_labels,
        "tree_sizes": sizes,
        "leaves_in_label_map": (present_leaves, checked_leaves),
        "seconds": seconds,
        "examples": examples,
    }


def print_coverage(title, result):
    total = result["sentences"]

    def share(count):
        return f"{count} ({100 * count / total:.1f}%)"

    print(f"\n## {title}: {total} sentences, parsed in {result['seconds']:.2f} s "
          f"({1000 * result['seconds'] / max(total, 1):.2f} ms each)\n")
    print(f"- complete tree: {share(result['complete'])}")
    print(f"- partial tree:  {share(result['partial'])}")
    single = result["tree_sizes"].get(1, 0)
    print(f"    of which a single object: {share(single)}")
    print(f"- no tree:       {share(result['none'])}")
    several_complete, several = result["several_classes"]
    print(f"- sentences naming two or more classes: {several}, of which complete: "
          f"{several_complete} ({100 * several_complete / max(several, 1):.1f}%)")
    print(f"- exceptions:    {len(result['exceptions'])}")
    for sentence, error in result["exceptions"][:10]:
        print(f"    {sentence!r}: {error}")
    print("\nreasons of partial trees (a tree may have several):")
    for reason, count in result["partial_reasons"].most_common():
        print(f"  {count:5d}  {reason}")
    print("\nreasons of no tree:")
    for reason, count in result["none_reasons"].most_common():
        print(f"  {count:5d}  {reason}")
    print("\nphrases outside the relation vocabulary (joined with the catch-all), most frequent:")
    print("  " + ", ".join(f"{phrase} {count}" for phrase, count in result["unknown_phrases"].most_common(25)))
    relations_total = sum(result["relation_labels"].values())
    print(f"\nrelation labels ({relations_total} internal nodes):")
    for label, count in result["relation_labels"].most_common():
        print(f"  {label:12s} {count:5d}  {100 * count / relations_total:5.1f}%")
    print("\ntree sizes (objects per tree):")
    for size, count in sorted(result["tree_sizes"].items()):
        print(f"  {size:2d} objects: {count}")
    present, checked = result["leaves_in_label_map"]
    if checked:
        share_present = f"{present}/{checked} ({100 * present / checked:.1f}%)"
        print(f"\ntree leaves whose class is in the image's label map: {share_present}")
    for sentence, bracketed, reason in result["examples"]:
        print(f"  {sentence!r}\n      -> {bracketed}   [{reason}]")


def label_maps(folder, class_names):
    """Image -> the classes its label map annotates (ids index ``class_names``; 0 is background)."""
    import numpy as np
    from PIL import Image

    maps = {}
    for path in sorted(Path(folder).glob("*.png")):
        ids = np.unique(np.asarray(Image.open(path)))
        maps[path.stem] = {class_names[i] for i in ids if 0 < i < len(class_names)}
    return maps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sysu", required=True, help="the sysu_scenes folder (sentences.jsonl, classes.txt)")
    parser.add_argument("--pascal", required=True, help="the pascal_sentences folder (captions.jsonl)")
    parser.add_argument("--top", type=int, default=60, help="linking phrases to print per data set")
    parser.add_argument("--check-labels", action="store_true", help="check tree leaves against the label maps")
    parser.add_argument("--show", type=int, default=0, help="print this many partial parses per data set")
    args = parser.parse_args(argv)

    sysu = read_sentences(args.sysu, "sentences.jsonl", "sentences", "--sysu")
    pascal = read_sentences(args.pascal, "captions.jsonl", "captions", "--pascal")
    start = time.perf_counter()
    sysu_parser, voc_parser = CaptionParser("sysu_scenes"), CaptionParser("voc")
    print(f"parsers built in {time.perf_counter() - start:.2f} s")

    print("\n# (a) Word sequences linking two object mentions")
    print_linking_phrases("SYSU-Scenes", linking_phrases(sysu_parser, sysu), args.top)
    print_linking_phrases("PASCAL Sentences (VOC classes)", linking_phrases(voc_parser, pascal), args.top)

    print("\n# (b) Parser coverage")
    sysu_maps = pascal_maps = None
    if args.check_labels:
        sysu_classes = (Path(args.sysu) / "classes.txt").read_text().split("\n")
        sysu_maps = label_maps(Path(args.sysu) / "labels", sysu_classes)
        pascal_maps = label_maps(Path(args.pascal) / "masks", ("background", *VOC_CLASSES))
    results = {
        "SYSU-Scenes": coverage(sysu_parser, sysu, sysu_maps, args.show),
        "PASCAL Sentences": coverage(voc_parser, pascal, pascal_maps, args.show),
    }
    for title, result in results.items():
        print_coverage(title, result)
    total_seconds = sum(result["seconds"] for result in results.values())
    total_sentences = sum(result["sentences"] for result in results.values())
    print(f"\nall {total_sentences} sentences parsed in {total_seconds:.2f} s")
    return 1 if any(result["exceptions"] for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
