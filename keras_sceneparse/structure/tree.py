"""Scene parse trees: the ``networkx.DiGraph`` contract, building, checking, text and JSON.

A parse tree describes an image as objects combined pairwise by relations (Socher et al.,
ICML 2011; Lin et al., CVPR 2016). The contract, which every parser of this library returns
and every consumer may rely on:

- a ``networkx.DiGraph`` with the graph attribute ``root`` (the root node's id);
- every node has ``kind``: ``"object"`` for leaves, ``"relation"`` for internal nodes, and
  ``label``: the object category of a leaf, the relation of an internal node;
- an internal node has exactly two children; the edge parent -> child carries ``position``
  0 for the subject (left) child and 1 for the object (right) child; leaves have none;
- optional node attributes: ``score`` (float), ``bbox`` (``[x0, y0, x1, y1]`` in pixels),
  ``area`` (pixels);
- node ids are consecutive integers from 0, children before parents (post-order).

``"A dog is sitting on a boat in front of a building"`` becomes
``(in_front_of (on dog boat) building)``: the relation ``on`` joins ``dog`` (subject) and
``boat`` (object), and ``in_front_of`` joins that pair to ``building``.
"""

import json

import networkx as nx

OBJECT = "object"
RELATION = "relation"


def object_tree(label, **attributes):
    """A tree with a single object leaf."""
    tree = nx.DiGraph(root=0)
    tree.add_node(0, kind=OBJECT, label=str(label), **attributes)
    return tree


def relation_tree(label, subject, object_, **attributes):
    """A tree whose root relation ``label`` joins the trees ``subject`` (position 0) and ``object_`` (1).

    The children are copied (renumbered in post-order); the inputs are left unchanged.
    """
    tree = nx.DiGraph()
    roots = []
    for child in (subject, object_):
        offset = tree.number_of_nodes()
        mapping = {node: offset + index for index, node in enumerate(post_order(child))}
        for node in post_order(child):
            tree.add_node(mapping[node], **child.nodes[node])
        for parent, kid, data in child.edges(data=True):
            tree.add_edge(mapping[parent], mapping[kid], **data)
        roots.append(mapping[child.graph["root"]])
    root = tree.number_of_nodes()
    tree.add_node(root, kind=RELATION, label=str(label), **attributes)
    tree.add_edge(root, roots[0], position=0)
    tree.add_edge(root, roots[1], position=1)
    tree.graph["root"] = root
    return tree


def children(tree, node):
    """``(subject, object)`` children of an internal node, or ``()`` for a leaf."""
    kids = sorted(tree.successors(node), key=lambda kid: tree.edges[node, kid]["position"])
    return tuple(kids)


def post_order(tree, node=None):
    """Node ids, children before parents, subject before object."""
    node = tree.graph["root"] if node is None else node
    order = []
    stack = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded or tree.nodes[current]["kind"] == OBJECT:
            order.append(current)
            continue
        stack.append((current, True))
        for kid in reversed(children(tree, current)):
            stack.append((kid, False))
    return order


def leaves(tree):
    """Object labels, left to right."""
    return [tree.nodes[n]["label"] for n in post_order(tree) if tree.nodes[n]["kind"] == OBJECT]


def relations(tree):
    """``(relation, subject leaves, object leaves)`` of every internal node, bottom-up."""
    result = []
    for node in post_order(tree):
        if tree.nodes[node]["kind"] == RELATION:
            left, right = children(tree, node)
            result.append((tree.nodes[node]["label"], _leaf_labels(tree, left), _leaf_labels(tree, right)))
    return result


def _leaf_labels(tree, node):
    return [tree.nodes[n]["label"] for n in post_order(tree, node) if tree.nodes[n]["kind"] == OBJECT]


def validate_tree(tree):
    """Raises ``ValueError`` naming the first way ``tree`` breaks the contract; returns it otherwise."""
    if not isinstance(tree, nx.DiGraph):
        raise ValueError(f"A parse tree must be a networkx.DiGraph, got {type(tree).__name__}.")
    if tree.number_of_nodes() == 0:
        raise ValueError("A parse tree must have at least one node.")
    root = tree.graph.get("root")
    if root not in tree:
        raise ValueError(f"The graph attribute 'root' ({root!r}) is not a node of the tree.")
    if not nx.is_arborescence(tree):
        raise ValueError("A parse tree must be a tree with edges from parents to children.")
    if tree.in_degree(root) != 0:
        raise ValueError(f"The root {root} has a parent.")
    for node, data in tree.nodes(data=True):
        kind, label = data.get("kind"), data.get("label")
        if kind not in (OBJECT, RELATION):
            raise ValueError(f"Node {node} has kind {kind!r}; expected 'object' or 'relation'.")
        if not isinstance(label, str) or not label:
            raise ValueError(f"Node {node} has label {label!r}; expected a non-empty string.")
        kids = list(tree.successors(node))
        if kind == OBJECT and kids:
            raise ValueError(f"Object node {node} ({label}) has children; objects are leaves.")
        if kind == RELATION:
            positions = sorted(tree.edges[node, kid].get("position") for kid in kids)
            if positions != [0, 1]:
                raise ValueError(
                    f"Relation node {node} ({label}) must have two children at positions 0 and 1, got {positions}."
                )
    return tree


# --- text -------------------------------------------------------------------------------


def _quote(label):
    return label.replace(" ", "_").replace("(", "[").replace(")", "]")


def to_bracketed(tree, node=None):
    """The tree as an S-expression: leaves are labels, relations ``(relation subject object)``.

    Spaces in labels become underscores: ``(in_front_of (on dog boat) building)``.
    """
    node = tree.graph["root"] if node is None else node
    data = tree.nodes[node]
    if data["kind"] == OBJECT:
        return _quote(data["label"])
    left, right = children(tree, node)
    return f"({_quote(data['label'])} {to_bracketed(tree, left)} {to_bracketed(tree, right)})"


def from_bracketed(text):
    """Parses :func:`to_bracketed` output back into a tree (underscores become spaces)."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    position = 0

    def parse():
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"Unexpected end of bracketed tree: {text!r}.")
        token = tokens[position]
        position += 1
        if token == ")":
            raise ValueError(f"Unexpected ')' in bracketed tree: {text!r}.")
        if token != "(":
            return object_tree(token.replace("_", " "))
        if position >= len(tokens) or tokens[position] in "()":
            raise ValueError(f"A relation must start with its label in {text!r}.")
        label = tokens[position].replace("_", " ")
        position += 1
        subject, object_ = parse(), parse()
        if position >= len(tokens) or tokens[position] != ")":
            raise ValueError(f"A relation must have exactly two children in {text!r}.")
        position += 1
        return relation_tree(label, subject, object_)

    tree = parse()
    if position != len(tokens):
        raise ValueError(f"Trailing text after the tree in {text!r}.")
    return tree


# --- JSON -------------------------------------------------------------------------------


def to_json(tree):
    """``networkx.node_link_data`` of the tree (a JSON-serialisable dict)."""
    return nx.node_link_data(validate_tree(tree), edges="edges")


def from_json(data):
    """The tree back from :func:`to_json` output (a dict or a JSON string)."""
    if isinstance(data, (str, bytes)):
        data = json.loads(data)
    return validate_tree(nx.node_link_graph(data, directed=True, multigraph=False, edges="edges"))
