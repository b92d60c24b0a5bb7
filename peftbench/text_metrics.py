"""Generation metrics, each over a corpus of hypotheses and their references (one or several per
input, grouped as the E2E challenge's script groups them), computed with sacrebleu, NLTK and
rouge-score (no hub): BLEU, NIST, METEOR (when NLTK's WordNet data is installed), ROUGE-1/2/L and
CIDEr-D. Scores are on a 0-100 scale, except NIST and CIDEr (their own scales).

The three libraries are imported when a metric is computed, not before: a run of a classification task
needs none of them (a machine may lack them; `missing` says which a metric would need)."""

import importlib.util
import math
from collections import Counter

Hypotheses = list[str]
References = list[list[str]]  # per hypothesis, its references


def missing(*modules: str):
    """An `unavailable` check: why a metric cannot be computed here (a library not installed), or None."""

    def check() -> str | None:
        absent = [module for module in modules if importlib.util.find_spec(module) is None]
        return f"{', '.join(absent)} not installed (pip install peftbench's dependencies)" if absent else None

    return check


def bleu(hypotheses: Hypotheses, references: References) -> float:
    """Corpus BLEU-4 with mteval-v13a tokenisation (the E2E script's BLEU), references padded per input."""
    import sacrebleu

    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(max(map(len, references)))]
    return sacrebleu.corpus_bleu(hypotheses, streams, tokenize="13a").score


def tokens_13a(text: str) -> list[str]:
    # the submodule itself: `sacrebleu.tokenizers.tokenizer_13a` is an attribute only once something (a BLEU
    # computed earlier in the process) has imported it, so NIST alone failed in a fresh process
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()(text).split()


def nist(hypotheses: Hypotheses, references: References) -> float:
    """Corpus NIST-5 on 13a tokens. An n-gram order that no hypothesis reaches adds 0 (NLTK would divide
    by zero there), so the orders stop at the longest hypothesis."""
    from nltk.translate.nist_score import corpus_nist

    hypothesis_tokens = [tokens_13a(h) for h in hypotheses]
    orders = min(5, max(map(len, hypothesis_tokens)))
    if orders == 0:
        return 0.0
    return corpus_nist([[tokens_13a(r) for r in refs] for refs in references], hypothesis_tokens, n=orders)


def rouge(kind: str):
    """Mean ROUGE F-measure (x100); with several references, the best one per input (rouge-score's score_multi)."""

    def compute(hypotheses: Hypotheses, references: References) -> float:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
        scores = [
            scorer.score_multi(refs, hypothesis)[kind].fmeasure for hypothesis, refs in zip(hypotheses, references)
        ]
        return 100 * sum(scores) / len(scores)

    return compute


def ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def cider_d(hypotheses: Hypotheses, references: References, sigma: float = 6.0) -> float:
    """CIDEr-D (Vedantam et al. 2015, as coco-caption computes it): TF-IDF n-gram vectors (n = 1..4,
    document frequency over the references of the corpus), cosine with each reference after clipping
    the hypothesis counts to the reference's, a Gaussian penalty on the length difference, averaged
    over n and references, times 10."""
    lower = [[r.lower().split() for r in refs] for refs in references]
    frequency = Counter(
        gram for refs in lower for n in range(1, 5) for gram in set().union(*(ngrams(r, n) for r in refs))
    )
    log_documents = math.log(len(references))

    def vector(tokens: list[str], n: int) -> tuple[dict, float]:
        weights = {g: c * (log_documents - math.log(max(1.0, frequency[g]))) for g, c in ngrams(tokens, n).items()}
        return weights, math.sqrt(sum(w * w for w in weights.values()))

    total = 0.0
    for hypothesis, refs in zip(hypotheses, lower):
        tokens = hypothesis.lower().split()
        score = 0.0
        for n in range(1, 5):
            hyp_vector, hyp_norm = vector(tokens, n)
            for ref in refs:
                ref_vector, ref_norm = vector(ref, n)
                dot = sum(min(w, ref_vector[g]) * ref_vector[g] for g, w in hyp_vector.items() if g in ref_vector)
                if hyp_norm and ref_norm:
                    score += dot / (hyp_norm * ref_norm) * math.exp(-((len(tokens) - len(ref)) ** 2) / (2 * sigma**2))
        total += score / (4 * len(refs)) * 10
    return total / len(hypotheses)


def wordnet_missing() -> str | None:
    """Why METEOR cannot be computed here, or None when it can."""
    if reason := missing("nltk", "sacrebleu")():
        return reason
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        return "NLTK's WordNet data is not installed (python -m nltk.downloader wordnet)"
    return None


def meteor(hypotheses: Hypotheses, references: References) -> float:
    """Mean NLTK METEOR (x100) on 13a tokens, best over each input's references."""
    from nltk.translate.meteor_score import meteor_score

    scores = [meteor_score([tokens_13a(r) for r in refs], tokens_13a(h)) for h, refs in zip(hypotheses, references)]
    return 100 * sum(scores) / len(scores)
