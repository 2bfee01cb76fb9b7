"""CDNOW benchmark: native BTYD models on the classic 39 + 39 week split, beside peer libraries."""
