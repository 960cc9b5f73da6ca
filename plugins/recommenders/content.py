"""A content model over product text: what a query or a product is about, in TF-IDF terms.

Each product is one document: its title (twice), brand, category path, tags, attribute
values, description, the text of its reviews, and the search queries that led shoppers to it
(a search followed within ``QUERY_WINDOW_S`` by a view, cart or purchase of the product by the
same shopper). Training fits the vocabulary and IDF weights (scikit-learn's
``TfidfVectorizer``: English stop words, sublinear term frequency, L2-normalised rows) and
keeps each term's ``max_postings`` strongest products: an inverted index, so a query or a
product is scored against the postings of its own terms, never against the whole catalog.

A product upserted after training gets its vector from the fitted vocabulary at once:
`ContentModel.add_products` returns a new model with the products added or replaced (words
the vocabulary does not know are ignored until the next training). Saved as arrays, no pickle.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import KIND, NONE, Interactions, Product
from shopfront.plugins.recommenders.base import Arrays, text_array
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

QUERY_WINDOW_S = 1800.0  # a search leads to what the shopper opened within half an hour
QUERIES_PER_PRODUCT = 50
REVIEW_CHARS = 2000  # review text kept per product
LEADS_TO = ("view", "click", "add_to_cart", "purchase")


def _vectorizer(max_features: int, n_documents: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        max_features=max_features,
        sublinear_tf=True,
        stop_words="english",
        max_df=0.5 if n_documents > 20 else 1.0,
        dtype=np.float32,
    )


# Serving tokenises with the same settings as training (no fitted state needed for that).
_ANALYZE = _vectorizer(1, 1).build_analyzer()


def document(product: Product, extra: Sequence[str] = ()) -> str:
    """The text the model reads for ``product`` (plus reviews and queries in ``extra``)."""
    parts = [
        product.title,
        product.title,
        product.brand,
        " ".join(product.category_path),
        " ".join(product.tags),
        " ".join(str(v) for v in product.attributes.values()),
        product.description,
        *extra,
    ]
    return " ".join(p for p in parts if p)


def product_texts(products: Sequence[Product], events: Interactions) -> dict[int, list[str]]:
    """Review texts and leading queries per product index (bounded per product)."""
    extra: dict[int, list[str]] = defaultdict(list)
    texts = events.text_ids
    reviews = np.flatnonzero((events.kind == KIND["review"]) & (texts != NONE) & (events.item >= 0))
    review_chars: dict[int, int] = defaultdict(int)
    for row in reviews.tolist():
        item = int(events.item[row])
        words = events.texts[int(texts[row])]
        if item < len(products) and review_chars[item] < REVIEW_CHARS:
            extra[item].append(words)
            review_chars[item] += len(words)
    searches = np.flatnonzero((events.kind == KIND["search"]) & (texts != NONE))
    if not len(searches):
        return extra
    lead_codes = [KIND[k] for k in LEADS_TO]
    leads = np.flatnonzero(np.isin(events.kind, lead_codes) & (events.item >= 0))
    # Per shopper, in time order: each search leads to the next product event within the window.
    order = leads[np.lexsort((events.timestamp[leads], events.user[leads]))]
    lead_user, lead_time = events.user[order], events.timestamp[order]
    for row in searches.tolist():
        user, when = int(events.user[row]), float(events.timestamp[row])
        lo = int(np.searchsorted(lead_user, user, side="left"))
        hi = int(np.searchsorted(lead_user, user, side="right"))
        at = lo + int(np.searchsorted(lead_time[lo:hi], when, side="right"))
        if at < hi and lead_time[at] - when <= QUERY_WINDOW_S:
            item = int(events.item[order[at]])
            if item < len(products) and len(extra[item]) < QUERIES_PER_PRODUCT:
                extra[item].append(events.texts[int(texts[row])])
    return extra


@dataclass(frozen=True, eq=False)
class ContentModel:
    """Products as L2-normalised TF-IDF rows over a fitted vocabulary, with an inverted index
    of each term's strongest products. Immutable: `add_products` returns a new model."""

    product_ids: tuple[str, ...]
    terms: tuple[str, ...]
    idf: npt.NDArray[np.float32]
    rows: sp.csr_matrix  # products x terms
    postings: sp.csc_matrix  # products x terms, each column cut to its strongest products
    created: npt.NDArray[np.float64]  # creation time per product (Unix seconds; 0 unknown)
    max_postings: int = 2_000
    _index: dict[str, int] = field(init=False, repr=False)
    _terms: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {pid: i for i, pid in enumerate(self.product_ids)})
        object.__setattr__(self, "_terms", {t: i for i, t in enumerate(self.terms)})

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._index

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        products: Sequence[Product],
        events: Interactions | None = None,
        *,
        max_features: int = 50_000,
        max_postings: int = 2_000,
    ) -> ContentModel:
        extra = product_texts(products, events) if events is not None else {}
        docs = [document(p, extra.get(i, ())) for i, p in enumerate(products)]
        vectorizer = _vectorizer(max_features, len(docs))
        try:
            rows = sp.csr_matrix(vectorizer.fit_transform(docs), dtype=np.float32)
            terms = tuple(str(t) for t in vectorizer.get_feature_names_out())
            idf = np.asarray(vectorizer.idf_, dtype=np.float32)
        except ValueError:  # no usable words at all
            rows = sp.csr_matrix((len(docs), 0), dtype=np.float32)
            terms, idf = (), np.zeros(0, dtype=np.float32)
        return cls(
            product_ids=tuple(p.id for p in products),
            terms=terms,
            idf=idf.astype(np.float32),
            rows=rows,
            postings=_cut_postings(rows, max_postings),
            created=_created(products),
            max_postings=max_postings,
        )

    def add_products(self, products: Iterable[Product]) -> ContentModel:
        """A model that also knows ``products`` (new ones appended, known ones replaced),
        vectorised with the fitted vocabulary: no retraining."""
        products = list(products)
        if not products:
            return self
        vectors = self.vectorize([document(p) for p in products])
        rows = sp.lil_matrix(self.rows)
        ids = list(self.product_ids)
        created = list(self.created)
        fresh: list[int] = []
        for k, p in enumerate(products):
            at = self._index.get(p.id)
            if at is None:
                fresh.append(k)
            else:
                rows[at] = vectors[k]
                created[at] = _created([p])[0]
        merged = sp.vstack([rows.tocsr(), vectors[fresh]], format="csr")
        ids += [products[k].id for k in fresh]
        created += [_created([products[k]])[0] for k in fresh]
        merged = sp.csr_matrix(merged, dtype=np.float32)
        return ContentModel(
            product_ids=tuple(ids),
            terms=self.terms,
            idf=self.idf,
            rows=merged,
            postings=_cut_postings(merged, self.max_postings),
            created=np.array(created, dtype=np.float64),
            max_postings=self.max_postings,
        )

    # -- serving ---------------------------------------------------------------------------

    def vectorize(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Rows for ``texts`` in the model's space (unknown words are ignored)."""
        data: list[float] = []
        indices: list[int] = []
        indptr = [0]
        for text in texts:
            counts: dict[int, int] = defaultdict(int)
            for token in _ANALYZE(text):
                term = self._terms.get(token)
                if term is not None:
                    counts[term] += 1
            for term, count in sorted(counts.items()):
                indices.append(term)
                data.append((1.0 + math.log(count)) * float(self.idf[term]))
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int32), indptr),
            shape=(len(texts), len(self.terms)),
        )
        return sp.csr_matrix(normalize(matrix), dtype=np.float32)

    def vector_of(self, product_id: str) -> sp.csr_matrix | None:
        row = self._index.get(product_id)
        return None if row is None else self.rows[row]

    def score(
        self, vector: sp.csr_matrix, limit: int, exclude: frozenset[str] = frozenset()
    ) -> list[tuple[str, float]]:
        """The ``limit`` products closest to ``vector`` (cosine), through the postings of its
        terms only."""
        terms = vector.indices
        if not len(terms):
            return []
        columns = self.postings[:, terms].tocoo()  # the postings of the vector's own terms
        if not columns.nnz:
            return []
        contrib = columns.data * vector.data.astype(np.float32)[columns.col]
        products, inverse = np.unique(columns.row, return_inverse=True)
        totals = np.bincount(inverse.ravel(), weights=contrib, minlength=len(products))
        skip = {self._index[pid] for pid in exclude if pid in self._index}
        found: list[tuple[str, float]] = []
        for at in np.lexsort((products, -totals)).tolist():
            product = int(products[at])
            if totals[at] > 0 and product not in skip:
                found.append((self.product_ids[product], float(totals[at])))
                if len(found) >= limit:
                    break
        return found

    def search(
        self, query: str, limit: int, exclude: frozenset[str] = frozenset()
    ) -> list[tuple[str, float]]:
        """Products matching ``query``, best first."""
        return self.score(self.vectorize([query]), limit, exclude)

    def similar(self, product_id: str, limit: int) -> list[tuple[str, float]]:
        """Products whose text is closest to ``product_id``'s (itself left out)."""
        vector = self.vector_of(product_id)
        if vector is None:
            return []
        return self.score(vector, limit, frozenset({product_id}))

    # -- persistence -----------------------------------------------------------------------

    def to_arrays(self, prefix: str = "content.") -> dict[str, npt.NDArray[Any]]:
        return {
            f"{prefix}product_ids": text_array(self.product_ids),
            f"{prefix}terms": text_array(self.terms),
            f"{prefix}idf": self.idf,
            f"{prefix}indptr": self.rows.indptr.astype(np.int64),
            f"{prefix}indices": self.rows.indices.astype(np.int32),
            f"{prefix}data": self.rows.data.astype(np.float32),
            f"{prefix}created": self.created,
            f"{prefix}max_postings": np.array(self.max_postings),
        }

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str = "content.") -> ContentModel:
        ids = tuple(str(s) for s in arrays[f"{prefix}product_ids"])
        terms = tuple(str(s) for s in arrays[f"{prefix}terms"])
        rows = sp.csr_matrix(
            (
                np.asarray(arrays[f"{prefix}data"], dtype=np.float32),
                np.asarray(arrays[f"{prefix}indices"], dtype=np.int32),
                np.asarray(arrays[f"{prefix}indptr"], dtype=np.int64),
            ),
            shape=(len(ids), len(terms)),
        )
        keep = int(arrays[f"{prefix}max_postings"][()])
        return cls(
            product_ids=ids,
            terms=terms,
            idf=np.asarray(arrays[f"{prefix}idf"], dtype=np.float32),
            rows=rows,
            postings=_cut_postings(rows, keep),
            created=np.asarray(arrays[f"{prefix}created"], dtype=np.float64),
            max_postings=keep,
        )


def _cut_postings(rows: sp.csr_matrix, keep: int) -> sp.csc_matrix:
    """Each term's ``keep`` strongest products (the rest still count for their own rows)."""
    csc = sp.csc_matrix(rows, dtype=np.float32)
    csc.sort_indices()
    counts = np.diff(csc.indptr)
    if len(counts) and counts.max(initial=0) > keep:
        data, indices, indptr = [], [], [0]
        for j in range(csc.shape[1]):
            lo, hi = csc.indptr[j], csc.indptr[j + 1]
            values, rows_j = csc.data[lo:hi], csc.indices[lo:hi]
            if hi - lo > keep:
                top = np.argpartition(-values, keep - 1)[:keep]
                top.sort()
                values, rows_j = values[top], rows_j[top]
            data.append(values)
            indices.append(rows_j)
            indptr.append(indptr[-1] + len(values))
        csc = sp.csc_matrix(
            (np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=csc.shape
        )
    return csc


def _created(products: Sequence[Product]) -> npt.NDArray[np.float64]:
    return np.array(
        [p.created_at.timestamp() if isinstance(p.created_at, datetime) else 0.0 for p in products],
        dtype=np.float64,
    )
