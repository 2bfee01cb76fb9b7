"""Online stores the API reads and writes: the Feast online store as feature and card reader,
and the contact log."""
