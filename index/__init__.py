"""Index: chunking, the embedding model, FAISS + BM25 search and their fusion."""
