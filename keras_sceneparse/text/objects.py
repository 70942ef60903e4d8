"""Object vocabularies: which words of a caption name which class of a data set.

Each vocabulary maps a class name, spelt exactly as its data set spells it, to the surface
forms that name it: singular words and multi-word names (``"cell phone"``), hyponyms
(``"kitten"`` for ``cat``), synonyms (``"couch"`` for ``sofa``) and the misspellings that the
data set's sentences contain (``"peson"``). Regular plurals are added by the parser
(:func:`keras_sceneparse.text.lexicon.noun_plural`); irregular ones are listed here.

Ambiguous words were checked against the label maps shipped with the data sets: a word is a
surface form of a class only when that class is present in the label map of most of the
images whose sentence uses the word. Measured this way (SYSU-Scenes sentences, PASCAL
Sentences captions with their VOC masks):

- ``"computer"`` names a ``laptop`` in SYSU-Scenes (28 of 36 images) but a ``tvmonitor`` in
  VOC (92 of 99), and VOC labels laptops as ``tvmonitor`` (21 of 26);
- ``"desk"`` is a ``table`` in SYSU-Scenes (21 of 26) but not a VOC ``diningtable`` (0 of
  60), nor is a ``"coffee table"`` (1 of 18);
- ``"bike"`` is a ``bicycle`` (SYSU-Scenes 91 of 97, VOC 69 of 98);
- ``"glass"`` is a ``cup`` in SYSU-Scenes (7 of 10), while ``"glasses"`` are ``glasses``;
- ``"lamp"`` is a misspelt lamb in SYSU-Scenes (``sheep`` in 8 of 12), a lamp in VOC;
- ``"truck"`` is a VOC ``car`` (24 of 26);
- left out: ``"ground"`` (SYSU-Scenes: grass 35, street/road 32 of 124), ``"water"``
  (sea 10 of 33), ``"track"`` (rail 0 of 10), ``"beach"``/``"bank"``, ``"flowers"``
  (pottedplant 11 of 29), and, though mostly annotated, ``"goat"`` (a goat is not a sheep,
  although VOC annotators drew 11 of 12 as one) and drinks (``"beer"``, ``"wine"``), which
  name their bottle or glass only by metonymy.

The ``*_NON_OBJECTS`` lists hold compounds that contain a class word but name something
else (``"coffee table"``, ``"bus stop"``); matching them first keeps their head word from
being read as the class.
"""

SYSU_SCENES_CLASSES = (
    "aeroplane",
    "bag",
    "ball",
    "bench",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "building",
    "bus",
    "camera",
    "car",
    "cat",
    "cellphone",
    "chair",
    "cow",
    "cup",
    "dog",
    "glasses",
    "grass",
    "horse",
    "laptop",
    "motorbike",
    "person",
    "racket",
    "rail",
    "sea",
    "sheep",
    "sky",
    "sofa",
    "street/road",
    "suitcase",
    "table",
    "train",
    "tree",
    "tv/monitor",
    "umbrella",
)
"""The 37 SYSU-Scenes tags, in label-map order (class id = position + 1; 0 is background)."""

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 PASCAL VOC classes as the devkit names them (class id = position + 1)."""

# --- surface forms shared by both data sets ----------------------------------------------
# Singular forms; regular plurals are generated. Irregular plurals and plural-only
# misspellings are listed explicitly.

_PERSON = [
    "person", "persons", "people", "peoples", "man", "men", "woman", "women", "child",
    "children", "kid", "boy", "girl", "baby", "infant", "toddler", "guy", "lady", "ladies",
    "gentleman", "gentlemen", "adult", "teenager", "youth", "player", "rider", "jockey",
    "cyclist", "bicyclist", "biker", "motorcyclist", "pedestrian", "passenger", "passerby",
    "tourist", "student", "soldier", "worker", "driver", "pilot", "sailor", "fisherman",
    "fishermen", "farmer", "spectator", "onlooker", "friend", "mother", "father", "mom", "dad",
    "daughter", "son", "brother", "sister", "parent", "grandmother", "grandfather", "bride",
    "groom", "couple", "family", "crowd", "police officer", "officer", "policeman",
    "policemen", "human", "someone", "somebody", "customer", "owner", "musician",
    "photographer", "runner", "skater", "skateboarder", "surfer", "swimmer", "athlete",
    # misspellings seen in SYSU-Scenes and PASCAL Sentences
    "peson", "pesons", "perosn", "peron", "perso", "persos", "preson", "pepole", "womem",
]
_BIRD = [
    "bird", "duck", "goose", "geese", "swan", "seagull", "gull", "parrot", "macaw", "parakeet",
    "owl", "eagle", "hawk", "falcon", "osprey", "penguin", "pigeon", "dove", "hummingbird",
    "chicken", "hen", "rooster", "ostrich", "emu", "stork", "egret", "heron", "pelican",
    "finch", "goldfinch", "bluebird", "blackbird", "songbird", "sparrow", "robin", "mallard",
    "lovebird", "peacock", "flamingo", "crow", "raven", "vulture", "cockatoo",
]
_BOAT = [
    "boat", "ship", "canoe", "kayak", "yacht", "sailboat", "sail boat", "ferry", "barge",
    "raft", "cruise ship", "cruiseship", "cruise liner", "ocean liner", "catamaran",
    "schooner", "motorboat", "speedboat", "riverboat", "dinghy", "tugboat", "vessel",
    "gondola", "freighter", "tanker", "rowboat", "steamboat", "warship",
]
_BOTTLE = ["bottle", "beer bottle", "wine bottle", "water bottle"]
_BUS = ["bus", "busses", "double decker", "double decker bus", "school bus", "schoolbus",
        "minibus", "trolleybus", "autobus", "coach bus"]
_CAR = ["car", "van", "minivan", "suv", "jeep", "taxi", "cab", "limo", "limousine",
        "truck", "pickup truck", "sedan", "convertible", "automobile", "racecar", "race car",
        "sports car", "police car"]
_CAT = ["cat", "kitten", "kitty", "tomcat"]
_CHAIR = ["chair", "armchair", "stool", "highchair", "high chair", "rocking chair",
          "office chair", "deck chair", "folding chair", "wheelchair", "chari"]
_COW = ["cow", "bull", "calf", "calves", "cattle", "ox", "oxen", "heifer", "longhorn"]
_DOG = ["dog", "puppy", "pup", "hound", "terrier", "retriever", "labrador", "bulldog",
        "poodle", "chihuahua", "pug", "dachshund", "greyhound", "collie", "beagle",
        "schnauzer", "spaniel", "husky", "shepherd dog", "german shepherd", "doggy"]
_HORSE = ["horse", "pony", "ponies", "foal", "colt", "mare", "stallion", "racehorse",
          "donkey", "mule", "hores"]
_MOTORBIKE = ["motorbike", "motorcycle", "motor bike", "motor cycle", "moped", "scooter",
              "dirt bike", "dirtbike", "vespa", "motobike", "motrobike", "motorbie",
              "motoibike", "montorbike", "motorbke"]
_SHEEP = ["sheep", "sheeps", "lamb", "ewe", "ram"]
_SOFA = ["sofa", "couch", "couches", "loveseat", "love seat", "futon", "settee", "softa"]
_TRAIN = ["train", "locomotive", "tram", "streetcar", "subway", "subway train", "metro",
          "steam engine", "freight train", "passenger train", "railcar", "boxcar", "caboose",
          "trian"]
_AEROPLANE = ["aeroplane", "airplane", "plane", "aircraft", "jet", "airliner", "jetliner",
              "jumbo jet", "biplane", "seaplane", "glider", "aeroplan", "areoplane",
              "aeroplance", "airplan"]
_BICYCLE = ["bicycle", "bike", "bicyle", "bycicle", "tandem bicycle", "tricycle", "bmx",
            "bicyclies"]

# --- SYSU-Scenes --------------------------------------------------------------------------

SYSU_SCENES_OBJECTS = {
    "aeroplane": _AEROPLANE,
    "bag": ["bag", "handbag", "backpack", "purse", "schoolbag", "shoulder bag", "shopping bag"],
    "ball": ["ball", "football", "soccer ball", "tennis ball", "volleyball", "basketball",
             "baseball", "ballon"],
    "bench": ["bench", "bences"],
    "bicycle": _BICYCLE,
    "bird": _BIRD,
    "boat": _BOAT,
    "bottle": _BOTTLE,
    "building": ["building", "house", "shop", "store", "tower", "church", "skyscraper",
                 "apartment building", "buidling", "buiding", "buidlings"],
    "bus": _BUS,
    "camera": ["camera", "caware"],
    "car": _CAR,
    "cat": _CAT,
    "cellphone": ["cellphone", "cell phone", "mobile phone", "phone", "mobile", "telephone",
                  "smartphone", "smart phone", "cellpone"],
    "chair": _CHAIR,
    "cow": _COW,
    "cup": ["cup", "mug", "glass", "wine glass", "teacup", "coffee cup"],
    "dog": _DOG,
    "glasses": ["glasses", "sunglasses", "eyeglasses", "spectacles", "sun glasses"],
    "grass": ["grass", "grasses", "grassses", "grass land", "grassland", "lawn", "meadow",
              "turf", "grass field"],
    "horse": _HORSE + ["borse", "hose"],
    "laptop": ["laptop", "lap top", "computer", "notebook computer", "desktop",
               "lapton", "laptopn", "taplop"],
    "motorbike": _MOTORBIKE,
    "person": _PERSON,
    "racket": ["racket", "racquet", "tennis racket", "recket"],
    "rail": ["rail", "railway", "railroad", "train track", "railway track", "raiways",
             "railwasys"],
    "sea": ["sea", "ocean", "seacoast", "sea side", "seaside", "see"],
    "sheep": _SHEEP + ["lamp"],
    "sky": ["sky", "skies"],
    "sofa": _SOFA,
    "street/road": ["street", "road", "highway", "lane", "avenue", "roadway", "raod", "oad",
                    "stree"],
    "suitcase": ["suitcase", "case", "luggage", "luggages", "suicase", "trunk"],
    "table": ["table", "desk", "dining table", "diningtable", "coffee table", "tabel", "desl"],
    "train": _TRAIN,
    "tree": ["tree"],
    "tv/monitor": ["tv", "television", "monitor", "screen", "tv set", "television set",
                   "computer screen", "computer monitor", "monotor"],
    "umbrella": ["umbrella", "umbrellaes", "umbella", "parasol"],
}
"""SYSU-Scenes class -> surface forms."""

_NON_OBJECTS = ["bus stop", "bus station", "train station", "car park", "tennis court",
                "table tennis", "bird cage", "birdcage", "bird feeder", "bird bath", "birdbath",
                "bird house", "birdhouse", "dog house", "doghouse", "dog bed", "dog food",
                "cat food", "horse trailer", "car seat", "bike rack", "bicycle rack"]

SYSU_SCENES_NON_OBJECTS = _NON_OBJECTS

# --- PASCAL VOC ---------------------------------------------------------------------------

VOC_OBJECTS = {
    "aeroplane": _AEROPLANE,
    "bicycle": _BICYCLE,
    "bird": _BIRD,
    "boat": _BOAT,
    "bottle": _BOTTLE,
    "bus": _BUS,
    "car": _CAR,
    "cat": _CAT,
    "chair": _CHAIR,
    "cow": _COW,
    "diningtable": ["diningtable", "dining table", "table", "kitchen table", "dinner table",
                    "picnic table", "dining room table"],
    "dog": _DOG,
    "horse": _HORSE,
    "motorbike": _MOTORBIKE,
    "person": _PERSON,
    "pottedplant": ["pottedplant", "potted plant", "plant", "houseplant", "house plant",
                    "pot plant", "flower pot", "flowerpot", "planter", "potted flower",
                    "potted tree", "bonsai"],
    "sheep": _SHEEP,
    "sofa": _SOFA,
    "train": _TRAIN,
    "tvmonitor": ["tvmonitor", "tv", "television", "monitor", "screen", "tv set",
                  "television set", "computer", "computer screen", "computer monitor",
                  "laptop", "flatscreen", "flat screen", "pc"],
}
"""PASCAL VOC class -> surface forms."""

VOC_NON_OBJECTS = _NON_OBJECTS + ["coffee table", "end table", "side table", "train track",
                                  "railroad track", "plant life", "power plant"]
