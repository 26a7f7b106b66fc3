"""WordNet ids of the Imagenette-layout datasets and their human-readable class names."""

CLASS_NAMES = {
    # Imagenette
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
    # Imagewoof
    "n02086240": "Shih-Tzu",
    "n02087394": "Rhodesian ridgeback",
    "n02088364": "beagle",
    "n02089973": "English foxhound",
    "n02093754": "Border terrier",
    "n02096294": "Australian terrier",
    "n02099601": "golden retriever",
    "n02105641": "Old English sheepdog",
    "n02111889": "Samoyed",
    "n02115641": "dingo",
}
IMAGENETTE_WNIDS = list(CLASS_NAMES)[:10]
DATASET_FAMILIES = {"Imagenette": IMAGENETTE_WNIDS, "Imagewoof": list(CLASS_NAMES)[10:]}


def class_name(wnid):
    return CLASS_NAMES.get(wnid, wnid)
