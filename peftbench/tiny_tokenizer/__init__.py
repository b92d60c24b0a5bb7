"""A 4,096-piece WordPiece tokenizer for the random-weight test language models (conf/model/tiny_*_lm.yaml).

With MiniLM's 30,522 pieces, a 32-wide tiny language model is almost all LM head: its logits and loss over
the vocabulary were most of every generation test's time. This vocabulary is MiniLM's, cut down: the
special tokens, every lower-case printable ASCII character and its word-piece continuation (so any ASCII
text tokenizes without [UNK]), every task's label words as one piece each (conf/task/*.yaml: the one-pass
scoring of one-token label words holds), then MiniLM's pieces in MiniLM's order up to the size. Rebuild it with
`python -m peftbench.tiny_tokenizer`; a test holds the committed files to what this builds."""

import json
import string
from pathlib import Path

SIZE = 4096
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # [PAD] = 0, as the tiny models' pad_token_id
FIRST_WORD = 1996  # MiniLM's (BERT uncased) pieces before this are [unused] slots and single characters
FOLDER = Path(__file__).resolve().parent
CONFIG = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}


def get_model_path() -> Path:
    """The folder the tokenizer loads from (the offline-package convention of models.local_package_dir)."""
    return FOLDER


def label_words() -> list[str]:
    """Every task config's label words, as the lower-casing tokenizer sees them ("yes" for " Yes")."""
    from omegaconf import OmegaConf

    from peftbench import CONF_DIR

    found = [w for p in sorted((CONF_DIR / "task").glob("*.yaml")) for w in OmegaConf.load(p).get("label_words") or []]
    return list(dict.fromkeys(w.strip().lower() for w in found))


def build(source_vocab: list[str], words: list[str], size: int = SIZE) -> list[str]:
    characters = [c for c in string.printable[:94] if not c.isupper()]  # lower-cased input: no capitals
    vocab = list(dict.fromkeys(SPECIAL + characters + ["##" + c for c in characters] + words))
    taken = set(vocab)
    for piece in source_vocab[FIRST_WORD:]:
        if len(vocab) == size:
            break
        if piece.isascii() and piece not in taken:
            vocab.append(piece)
            taken.add(piece)
    return vocab


def minilm_vocab() -> list[str]:
    from omegaconf import OmegaConf

    from peftbench.models import OFFLINE_TOKENIZER_PACKAGE, local_package_dir

    folder = local_package_dir(OmegaConf.create({"local_package": OFFLINE_TOKENIZER_PACKAGE}))
    return (Path(folder) / "vocab.txt").read_text().splitlines()


def write(folder: Path = FOLDER) -> None:
    (folder / "vocab.txt").write_text("\n".join(build(minilm_vocab(), label_words())) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
