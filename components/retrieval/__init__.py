"""Retrieval: chunk-documents, embed, build-index, evaluate-retrieval (an index is a model too).

Modules: `chunking` (records -> passages), `embedder` (sentence encoder over the pretrained-encoder
loader), `embeddings` (the embed step's output), `index` (the index artifact: faiss HNSW or exact),
`retriever` (queries -> top-k documents), `metrics` / `metric_names` (recall@K, MRR, nDCG@K),
`evaluate` (scoring + the evaluate gate), `report` (HTML), `steps` (what the components do), `checks`
(compile time), `ops` (the @dsl.components). Nothing is imported here: the checks must stay light.
"""

__all__: list[str] = []
