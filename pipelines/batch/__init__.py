"""Batch scoring: every member of a snapshot scored in resumable chunks, the run manifest, and
the HTML report."""
