"""Prepared caches as WebDataset tar shards, streamed from a folder or object storage, for datasets larger
than one disk.

Layout of an export (`python -m datamodules.streaming export CACHE_DIR OUT_URL`, `export.py`)::

    index.json           {"complete", "params" (the cache's), "splits": {split: {"samples", "speakers"}},
                          "shards": [{"name", "split", "samples"}, ...]}
    shard-000000.tar     per sample (key = its row in the cache, 9 digits): <key>.json (meta) and
                         <key>.<array name>.npy (each array), consecutive members: the WebDataset layout

Every shard holds one split only. Shards and the index are written under a temporary name and renamed,
so an interrupted export (rerun the same command) keeps the finished shards and redoes only the others.
`OUT_URL` and reading URLs are local folders, `file://` or any fsspec URL (`s3://`, `gs://`, `https://`…).

Training (`StreamingLoader`) is a pure function of (seed, epoch, position), like `ResumableLoader`:
per epoch a seeded permutation of the split's shards; the shard at position p goes to rank p % world,
and within the rank to lane (p // world) % lanes; each lane streams its shards through a seeded shuffle
buffer; the rank's batch i comes from lane i % lanes. DataLoader workers each serve some lanes, so the
stream depends on `lanes` (default: the number of workers), never on the number of workers.

Equal lengths under DDP: a rank that runs out of batches first leaves the others waiting in a collective
forever. Every lane of every rank therefore yields exactly the batches the poorest possible lane fills:
(samples of the k smallest shards) // batch_size, k = shards // (ranks × lanes), whatever the permutation.
That count comes from the index alone, so ranks agree without talking and every epoch has the same length;
the rest of each lane is dropped (other samples next epoch). Use many more shards than ranks × lanes.
"""
