"""L4, I/O: the durable journal, snapshots and recovery, and `open_core` which assembles them.

- `format` (pure): segment header, `length | crc32c | payload` frames, the versioned record.
- `segments`: validate a journal directory, cut a torn tail, refuse damage in the middle.
- `file`: `FileJournal`, the sequencer's `Journal` port on size-rotated segment files.
- `snapshots`: atomic, checksummed snapshot files, the newest `keep` kept.
- `recovery`: newest valid snapshot plus journal tail; full-replay state hash.
- `core`: `open_core(data_dir, ...)` recovers and returns a running sequencer and engine.

A data directory holds `journal/` (segments and a LOCK file) and `snapshots/`.
"""
