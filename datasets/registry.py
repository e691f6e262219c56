"""The datasets batscope knows: official file names, download sources and pinned hashes.

Hash policy (see ``verify.py``):

* ``sha256`` is the SHA-256 of the **decompressed** IDX content. It is the primary check, because
  it still holds after someone re-compresses an official file. ``None`` means not pinned: we
  could not get the official decompressed content to compute it, and we never guess hashes.
* ``gz_sha256`` and ``gz_md5`` are digests of the official ``.gz`` file **as distributed**. They
  are accepted as an alternative check only when they match the file's bytes exactly.
* For EMNIST the official distribution is one archive, ``gzip.zip``, pinned by ``ARCHIVE_MD5``;
  a member read out of a verified archive is trusted.

Provenance of every pinned value:

* MNIST ``sha256``: computed from the official files in ``/work/shared/datasets/mnist``
  (re-compressed copies whose label counts match the official 5923/6742/... split).
* MNIST ``gz_md5``: torchvision's resource list; ``gz_sha256``: TensorFlow Datasets' checksums,
  quoted by many independent projects.
* Fashion-MNIST ``gz_md5``: the official README (zalandoresearch/fashion-mnist); ``gz_sha256``:
  two independent projects that agree.
* EMNIST ``ARCHIVE_MD5``: torchvision's EMNIST resource. Member ``gz_sha256`` values come from
  a third-party list (notwa/mnists); the balanced and digits **train** members are corroborated
  by a second independent project that pinned them after extracting the official NIST zip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "test")
KINDS = ("images", "labels")


@dataclass(frozen=True)
class FileSpec:
    """One official IDX file: its name without ``.gz`` and the hashes pinned for it."""

    filename: str
    sha256: str | None = None
    gz_sha256: str | None = None
    gz_md5: str | None = None
    member: str | None = None  # path inside the dataset's archive, if it comes in one

    @property
    def gz_name(self) -> str:
        return self.filename + ".gz"

    @property
    def has_hash(self) -> bool:
        return any((self.sha256, self.gz_sha256, self.gz_md5))


@dataclass(frozen=True)
class ArchiveSpec:
    """A zip archive that holds the files (EMNIST's ``gzip.zip``)."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size_hint: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, fetch, verify and decode one dataset."""

    name: str
    title: str
    subdir: str  # folder below the cache root
    files: dict[tuple[str, str], FileSpec]  # (split, kind) -> file
    n_classes: int
    counts: dict[str, int]
    mirrors: tuple[str, ...] = ()  # base URLs for per-file downloads (file name + ".gz")
    archive: ArchiveSpec | None = None
    transpose: bool = False  # stored transposed (EMNIST): transpose on load
    label_offset: int = 0  # subtracted from stored labels (EMNIST letters are 1..26)
    homepage: str = ""
    notes: str = ""
    class_names: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def file(self, split: str, kind: str) -> FileSpec:
        return self.files[(split, kind)]


def _mnist_like(prefix: str, hashes: dict[str, tuple]) -> dict[tuple[str, str], FileSpec]:
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        for kind, dim in (("images", 3), ("labels", 1)):
            sha, gz_sha, gz_md5 = hashes[f"{stem}-{kind}"]
            name = f"{prefix}{stem}-{kind}-idx{dim}-ubyte"
            out[(split, kind)] = FileSpec(name, sha, gz_sha, gz_md5)
    return out


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits",
    subdir="mnist",
    files=_mnist_like(
        "",
        {
            "train-images": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            ),
            "train-labels": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "d53e105ee54ea40749a09fcbcd1e9432",
            ),
            "t10k-images": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "9fb629c4189551a2d022fa330f9573f3",
            ),
            "t10k-labels": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        },
    ),
    n_classes=10,
    counts={"train": 60000, "test": 10000},
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    homepage="http://yann.lecun.com/exdb/mnist/",
    class_names=tuple("0123456789"),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando) article images",
    subdir="fashion-mnist",
    files=_mnist_like(
        "",
        {
            # Decompressed-content SHA-256 not pinned: no verified official copy was available.
            "train-images": (
                None,
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            ),
            "train-labels": (
                None,
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                "25c81989df183df01b3e8a0aad5dffbe",
            ),
            "t10k-images": (
                None,
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                "bef4ecab320f06d8554ea6380940ec79",
            ),
            "t10k-labels": (
                None,
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        },
    ),
    n_classes=10,
    counts={"train": 60000, "test": 10000},
    mirrors=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        # The official S3 *website* endpoint serves plain HTTP only (no TLS); downloads are
        # accepted only if they match the pinned hashes, so the fallback is still safe.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

EMNIST_ARCHIVE = ArchiveSpec(
    filename="gzip.zip",
    urls=("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",),
    md5="58c8d27c78d21e728a6bc7b3cc06412e",
    size_hint="about 560 MB",
)

# gz_sha256 of the members of the official gzip.zip (see the module docstring for provenance).
_EMNIST_GZ_SHA256 = {
    "balanced": {
        "train-images": "74295e75e4e9fa2c102147460ee7eb763653d5132d883a84fb88932bfb8d2db4",
        "train-labels": "b46d41e5156a0a8aaaa4d18979fdd1588850fa8571018acffd5d93b325a7d6ed",
        "test-images": "117fc12b015e37ea98bfb2cbba3f77c3782c056cdbd219b87abfc8661d7135db",
        "test-labels": "a67cac948379b67270b9a4d0a01c8ec661598accf2f2b1964340b7c83cb175cd",
    },
    "letters": {
        "train-images": "6288f418a917e007bf5fddb823a2dc7a5c6a35031401b93292a539cb12bd881f",
        "train-labels": "9759af91ea6bccdf07a6040fd085861f2ec88e37f7c3f5760f6feb57106fbe5c",
        "test-images": "50f0e93d75b99b463e9760b8345866f22587fa2c2fba472730a5ba09c693412d",
        "test-labels": "924955c31fe7fd809b7303b5c0141282955f4b8390c74cdfd5d80435e0f4b4cb",
    },
    "digits": {
        "train-images": "f7c95004d14d81af89522e67d8f0c781dfb3bd544181c81bfe1eb6b41c35b726",
        "train-labels": "6638a6ff5fe2eefd9cca2471995b46c82986b8e4b2a70d2f5ce8e05d7edb319e",
        "test-images": "20ebe43509264f7639d37c835a3f0b009e90b29e00a099a03101abe1644a3f63",
        "test-labels": "bad1834c45d5988e270b99d43b13edc3fd898f658ffbc2caf2846ef27f7b05b0",
    },
}


def _emnist(variant, n_classes, counts, names: str, offset: int = 0, notes: str = ""):
    files = {}
    for split in SPLITS:
        for kind, dim in (("images", 3), ("labels", 1)):
            name = f"emnist-{variant}-{split}-{kind}-idx{dim}-ubyte"
            files[(split, kind)] = FileSpec(
                name,
                sha256=None,
                gz_sha256=_EMNIST_GZ_SHA256[variant][f"{split}-{kind}"],
                member=f"gzip/{name}.gz",
            )
    return DatasetSpec(
        name=f"emnist-{variant}",
        title=f"EMNIST {variant} (NIST SD 19 in MNIST format)",
        subdir="emnist",
        files=files,
        n_classes=n_classes,
        counts=counts,
        archive=EMNIST_ARCHIVE,
        transpose=True,
        label_offset=offset,
        homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
        notes=notes,
        class_names=tuple(names),
    )


# Official mapping files: balanced = digits, A-Z, then the 11 lowercase letters that differ
# from their capitals; letters = a..z (upper and lower case merged); digits = 0-9.
EMNIST_BALANCED = _emnist(
    "balanced",
    47,
    {"train": 112800, "test": 18800},
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt",
    notes="the test split has 18 800 images",
)
EMNIST_LETTERS = _emnist(
    "letters",
    26,
    {"train": 124800, "test": 20800},
    "abcdefghijklmnopqrstuvwxyz",
    offset=1,
    notes="stored labels are 1..26 (a..z); batscope returns 0..25",
)
EMNIST_DIGITS = _emnist("digits", 10, {"train": 240000, "test": 40000}, "0123456789")

DATASETS: dict[str, DatasetSpec] = {
    s.name: s for s in (MNIST, FASHION_MNIST, EMNIST_BALANCED, EMNIST_LETTERS, EMNIST_DIGITS)
}
ALIASES = {
    "emnist": "emnist-balanced",
    "fashion": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


# Datasets with their own loaders rather than IDX files: Yin-Yang is generated from its rule
# (yinyang.py), SHD read from local HDF5 files (shd.py). Not in ``DATASETS``.
OTHER_DATASETS = ("yin-yang", "shd")
OTHER_ALIASES = {"yinyang": "yin-yang"}


def other_dataset(name: str) -> str | None:
    """The canonical name if ``name`` is one of ``OTHER_DATASETS`` (or an alias), else None."""
    key = str(name).strip().lower().replace("_", "-")
    key = OTHER_ALIASES.get(key, key)
    return key if key in OTHER_DATASETS else None


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by name (case-insensitive, with aliases such as ``"emnist"``)."""
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, ALIASES.get(str(name).lower(), key))
    if key not in DATASETS:
        known = ", ".join(sorted(DATASETS) + sorted(ALIASES))
        raise ValueError(f"unknown dataset {name!r}; known: {known}")
    return DATASETS[key]


def list_datasets() -> list[str]:
    """Names accepted by :func:`batscope.datasets.load`."""
    return list(DATASETS)


def class_names(name: str) -> list[str]:
    """Display names of a dataset's classes, indexed by the labels ``load`` returns."""
    return list(get_spec(name).class_names)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split
