"""CDNOW benchmark on the classic 39 + 39 week split, beside peer libraries: the native BTYD
models of `features.btyd` (`run`) and the product's own commands end to end (`product`)."""
